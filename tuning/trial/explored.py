"""The values population-based training chose, over what another trial's checkpoint restores.

A trial that PBT moved onto a donor's checkpoint is built from its new config: its module's
``hparams`` and its DataModule (batch size included) already hold the new values. Lightning then
restores the checkpoint's optimizer and LR scheduler states, which would put the donor's learning
rate, weight decay, momentum and betas back (ray-project/ray#36660, #62173). This callback edits
those states before they are loaded: every param group takes the values of the optimizer that
the module just configured, a scheduled learning rate keeps its place in the schedule (scaled by
new / old initial rate), and each scheduler's ``base_lrs`` become the new ones. It also logs what
the optimizers use each epoch (``optimizer/lr``, ...), so a sweep can see the values applied.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

LOGGED = ("lr", "weight_decay", "momentum")


def apply_group(fresh: dict[str, Any], saved: dict[str, Any]) -> None:
    """Puts a freshly configured param group's values over a saved one (not its params)."""
    ratio = None
    if fresh.get("initial_lr") and saved.get("initial_lr"):
        ratio = fresh["initial_lr"] / saved["initial_lr"]
    scheduled_lr = saved.get("lr")
    for key, value in fresh.items():
        if key != "params":
            saved[key] = value
    if ratio is not None and scheduled_lr is not None:
        saved["lr"] = scheduled_lr * ratio


def apply_scheduler(fresh: Any, saved: dict[str, Any]) -> None:
    """Puts a freshly built LR scheduler's base rates over a saved scheduler state."""
    fresh_base = getattr(fresh, "base_lrs", None)
    old_base = saved.get("base_lrs")
    if fresh_base is None or old_base is None:
        return
    saved["base_lrs"] = list(fresh_base)
    if "_last_lr" in saved:
        saved["_last_lr"] = [last * new / old if old else new
                             for last, new, old in zip(saved["_last_lr"], fresh_base, old_base, strict=False)]


class _ExploredValues:
    """Applies the trial's configured optimizer values over a restored checkpoint's."""

    def __init__(self, apply: bool) -> None:
        super().__init__()
        self._apply = apply
        self._checkpoint: dict[str, Any] | None = None

    def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        if not self._apply:
            return
        self._checkpoint = checkpoint
        if trainer.optimizers:  # a strategy that restores after setting up (FSDP, DeepSpeed)
            self._edit(trainer)

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        # Lightning has configured the optimizers from the module (the new values) and not yet
        # loaded the checkpoint's states into them: edit those states now.
        if self._checkpoint is not None:
            self._edit(trainer)

    def _edit(self, trainer: Any) -> None:
        checkpoint, self._checkpoint = self._checkpoint or {}, None
        for optimizer, state in zip(trainer.optimizers, checkpoint.get("optimizer_states", []), strict=False):
            for fresh, saved in zip(optimizer.param_groups, state.get("param_groups", []), strict=False):
                apply_group(fresh, saved)
        for config, state in zip(trainer.lr_scheduler_configs,
                                 checkpoint.get("lr_schedulers", []), strict=False):
            apply_scheduler(config.scheduler, state)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        for i, optimizer in enumerate(trainer.optimizers):
            for j, group in enumerate(optimizer.param_groups):
                suffix = f"/{i}.{j}" if i or j else ""  # optimizer i, param group j
                for key in LOGGED:
                    if isinstance(group.get(key), int | float):
                        # The same on every rank: synced, as Lightning asks of epoch-level
                        # logs in a distributed run.
                        pl_module.log(f"optimizer/{key}{suffix}", float(group[key]),
                                      sync_dist=True)


@functools.cache
def explored_values_callback(pl: ModuleType) -> type:
    """The callback class for Lightning namespace ``pl``; construct it with ``apply``: whether
    the run starts from another trial's checkpoint."""
    return type("ExploredValues", (_ExploredValues, pl.Callback), {"__module__": __name__})
