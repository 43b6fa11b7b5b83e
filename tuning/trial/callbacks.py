"""Lightning callbacks named in the sweep file, built inside every trial.

A sweep file lists them under ``callbacks``, each a one-key mapping from the class to its
keyword arguments::

    callbacks:
      - EarlyStopping: {monitor: val/loss, patience: 3}
      - LearningRateMonitor: {logging_interval: epoch}
      - ModelCheckpoint: {monitor: val/acc, mode: max, save_top_k: 1}
      - my_package.callbacks:PrintEpoch: {}

A bare name is a class of the user's Lightning namespace (``lightning.pytorch.callbacks`` or
``pytorch_lightning.callbacks``); ``package.module:Class`` is any other.
"""

from __future__ import annotations

import inspect
from typing import Any

from tuning.config import hydra_project
from tuning.config.spec import SweepSpec
from tuning.config.targets import resolve_class
from tuning.errors import SweepError

CHECKPOINT_DIR = "lightning_checkpoints"  # a ModelCheckpoint's files, under the trial's directory


def _entries(spec: SweepSpec) -> list[tuple[str, str, dict[str, Any]]]:
    """(field, class name, arguments) of each callback the sweep names."""
    return [(f"callbacks[{i}].{name}", name, args or {})
            for i, entry in enumerate(spec.callbacks) for name, args in entry.items()]


def callback_class(pl: Any, name: str, field: str) -> type:
    """The class ``name`` stands for: ``package.module:Class`` (or ``package.module.Class``, as
    a LightningCLI config names it), or one of ``pl.callbacks``."""
    if ":" in name or "." in name:
        return resolve_class(name, field)
    cls = getattr(pl.callbacks, name, None)
    if not inspect.isclass(cls):
        known = sorted(n for n in dir(pl.callbacks) if inspect.isclass(getattr(pl.callbacks, n)))
        raise SweepError(f"{field}: {pl.__name__}.callbacks has no {name!r}. Fix: use one of "
                         f"{', '.join(known)}, or write package.module:ClassName")
    return cls


def check_callbacks(spec: SweepSpec, pl: Any) -> None:
    """Checks that every named callback exists and takes its arguments.

    Raises:
        SweepError: Naming the callback's entry and the fix.
    """
    has_logger = spec.wandb.enabled or spec.trainer_args.get("logger") not in (None, False)
    for field, name, args in _entries(spec):
        cls = callback_class(pl, name, field)
        try:
            inspect.signature(cls).bind(**args)
        except TypeError as exc:
            raise SweepError(f"{field}: {exc}. Fix: use the arguments of {cls.__qualname__}"
                             ) from None
        if issubclass(cls, pl.callbacks.LearningRateMonitor) and not has_logger:
            raise SweepError(f"{field}: logs to a logger, and this sweep has none (W&B is off). "
                             "Fix: turn W&B on (wandb.enabled: true) or remove it")


def build_callbacks(spec: SweepSpec, pl: Any, trial_dir: str | None) -> list[Any]:
    """The sweep's callbacks for one trial; a ModelCheckpoint without a ``dirpath`` saves under
    ``trial_dir`` (a local experiment's trial directory), else where Lightning would."""
    callbacks = []
    for field, name, args in _entries(spec):
        cls = callback_class(pl, name, field)
        if issubclass(cls, pl.callbacks.ModelCheckpoint) and trial_dir and "dirpath" not in args:
            args = {**args, "dirpath": f"{trial_dir}/{CHECKPOINT_DIR}"}
        callbacks.append(cls(**args))
    return callbacks


def build_hydra_callbacks(resolved: dict[str, Any], pl: Any, trial_dir: str) -> list[Any]:
    """A Hydra project's callbacks (``callbacks:`` of its resolved config) for one trial, built
    by Hydra; a ModelCheckpoint without a ``dirpath`` saves under ``trial_dir``."""
    from hydra.utils import instantiate

    built = []
    for obj in hydra_project.callbacks(resolved).values():
        callback = instantiate(obj)
        if isinstance(callback, pl.callbacks.ModelCheckpoint) and obj.get("dirpath") is None:
            callback.dirpath = f"{trial_dir}/{CHECKPOINT_DIR}"
        built.append(callback)
    return built
