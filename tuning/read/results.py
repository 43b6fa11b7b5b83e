"""Reading a sweep, running or finished: the leaderboard, the best trial, its model."""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tuning.config.hydra_project import (
    SECTIONS,
    TARGET,
    experiment_config,
    hydra_path,
    override_text,
    task_overrides,
)
from tuning.config.lightning_config import best_config
from tuning.config.objects import apply_optimizer, build, build_arguments, object_form
from tuning.config.spec import SweepSpec, total_violation
from tuning.config.targets import lightning_namespace, resolve_class
from tuning.contracts import SEED_KEY
from tuning.errors import SweepError
from tuning.record import EpochRecord, Ledger, TrialRecord
from tuning.record.files import atomic_write_text
from tuning.record.lineage import searched_values
from tuning.record.location import Location


def leaderboard(experiment: str | Location) -> list[dict[str, Any]]:
    """Every trial, best first, as dicts with keys trial_id, status, epochs, value, config, error.

    Args:
        experiment: The experiment directory, or its cloud URI.
    """
    return Ledger.load(experiment).rows()


@dataclass(frozen=True)
class BestTrial:
    """The best trial of a sweep, judged by its best epoch.

    Attributes:
        trial_id: Tune's id of the trial.
        config: The searched values, by full key (``"module.lr"``).
        metric: The sweep's metric.
        value: The metric at the trial's best epoch.
        epoch: That epoch (1-based).
        checkpoint: A Lightning ``.ckpt`` file (a path, or a URI in cloud storage): of the
            best epoch, or the best one kept.
        checkpoint_epoch: The epoch whose weights ``checkpoint`` holds.
        spec: The sweep, to rebuild the model's and data's classes and arguments.
        schedule: Under population-based training, the values the trial trained with and from
            which epoch on (:meth:`tuning.record.TrialRecord.schedule`); ``config`` holds the
            last of them. None when they never changed.
        values: With several objectives (or constraints), every objective's (and constrained
            metric's) value at ``epoch``, the trial's last scored epoch; None otherwise.
    """

    trial_id: str
    config: dict[str, Any]
    metric: str
    value: float
    epoch: int
    checkpoint: str
    checkpoint_epoch: int
    spec: SweepSpec
    schedule: list[dict[str, Any]] | None = None
    values: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial_id": self.trial_id,
            "config": searched_values(self.config, self.spec.shown_keys),
            "metric": self.metric, "value": self.value, "epoch": self.epoch,
            **({"values": self.values} if self.values is not None else {}),
            "checkpoint": self.checkpoint, "checkpoint_epoch": self.checkpoint_epoch,
            **({"schedule": self.schedule} if self.schedule else {}),
        }

    def download_checkpoint(self, directory: str | Path) -> Path:
        """Copies the checkpoint into ``directory`` if it is in cloud storage; its local path."""
        return Location.parse(self.checkpoint).download(Path(directory))

    def load_model(self, map_location: str = "cpu") -> Any:
        """The trained LightningModule, loaded with ``Class.load_from_checkpoint`` (a checkpoint
        in cloud storage is downloaded to a temporary directory first).

        What ``save_hyperparameters`` left out of the checkpoint (an ignored ``net``) is
        rebuilt from the trial's own configuration, as are the objects it kept.
        """
        self.spec.enter_project()  # a Hydra project's classes import from its root
        module_cls: Any = resolve_class(self.spec.module, "module")
        pl = lightning_namespace(module_cls, "LightningModule")
        args = self.spec.trial_args(self.config)
        init = build_arguments(module_cls, args["module"], pl)
        init_holds_objects = object_form(args["module"]) is not None
        with tempfile.TemporaryDirectory(prefix="lightsweep-") as tmp:
            path = self.download_checkpoint(tmp)
            # Hyperparameters saved by a LightningCLI-style module hold objects (an optimizer
            # callable is a functools.partial), which torch's weights-only loading refuses; the
            # checkpoint is one this sweep's own trial wrote.
            model = module_cls.load_from_checkpoint(
                path, map_location=map_location, weights_only=False if init_holds_objects else None, **init)
        apply_optimizer(model, args["optimizer"], args["lr_scheduler"], pl)
        return model

    def load_datamodule(self, **overrides: Any) -> Any:
        """The trial's DataModule, with its batch size per single process (global batch)."""
        self.spec.enter_project()
        datamodule_cls = resolve_class(self.spec.datamodule, "datamodule")
        pl = lightning_namespace(datamodule_cls, "LightningDataModule")
        args = {**self.spec.trial_args(self.config)["datamodule"], **overrides}
        return build(datamodule_cls, args, pl)

    def lightning_config(self) -> dict[str, Any]:
        """The trial as a LightningCLI config: the sweep's base config (if it had one) with the
        trial's values in place, which the project's own ``LightningCLI`` runs as is."""
        return best_config(
            self.spec.lightning_config, self.spec.module, self.spec.datamodule,
            self.spec.trial_args(self.config), self.spec.scheduler.max_epochs,
            self.config.get(SEED_KEY, self.spec.search.seed),
        )

    def hydra_values(self) -> dict[str, Any]:
        """The trial as values at the paths of a Hydra project's config (``model.optimizer.lr``):
        what the sweep's overrides set, the sweep file's own arguments, the searched values,
        the trial's length and seed."""
        spec = self.spec
        values: dict[str, Any] = {}
        if spec.hydra is not None:
            values.update(task_overrides(spec.hydra, self._choices())[1])
        for route in SECTIONS:
            values.update({f"{SECTIONS[route]}.{k}": v for k, v in spec.own_args(route).items()})
        values.update({hydra_path(k): v
                       for k, v in spec.search_space.values(self.config).items()})
        values["trainer.max_epochs"] = spec.scheduler.max_epochs
        values["seed"] = self.config.get(SEED_KEY, spec.search.seed)
        return values

    def _choices(self) -> dict[str, Any]:
        runtime = (self.spec.hydra_config.get("hydra") or {}).get("runtime") or {}
        return dict(runtime.get("choices") or {})

    def hydra_overrides(self) -> list[str]:
        """The trial as Hydra overrides of the project's config (``model.optimizer.lr=0.01``):
        the project's own entry point trains it with them."""
        groups, _, added = (task_overrides(self.spec.hydra, self._choices()) if self.spec.hydra
                            else ({}, {}, set()))
        return [*(f"{g}={o}" for g, o in groups.items()),
                # ++: a key the sweep added to the config (+KEY=VALUE) is added again
                *(f"{'++' if k in added else ''}{k}={override_text(v)}"
                  for k, v in self.hydra_values().items())]

    def hydra_experiment(self) -> dict[str, Any]:
        """The trial as a Hydra experiment config of the project (``experiment=NAME``); for a
        sweep file in Hydra's object form, ``model``/``data`` as ``_target_`` objects that
        ``hydra.utils.instantiate`` builds."""
        if self.spec.hydra is not None:
            groups = task_overrides(self.spec.hydra, self._choices())[0]
            return experiment_config(groups, self.hydra_values())
        args = self.spec.trial_args(self.config)
        return {"model": {TARGET: self.spec.module.replace(":", "."), **args["module"]},
                "data": {TARGET: self.spec.datamodule.replace(":", "."), **args["datamodule"]},
                "trainer": {**args["trainer"], "max_epochs": self.spec.scheduler.max_epochs},
                "seed": self.config.get(SEED_KEY, self.spec.search.seed)}

    def config_form(self) -> str:
        """Which form :meth:`write_config` writes: ``hydra`` for a Hydra project or a sweep
        file whose objects are Hydra's, else ``lightning`` (LightningCLI)."""
        spec = self.spec
        if spec.hydra is not None:
            return "hydra"
        if spec.lightning_config:
            return "lightning"
        own = {**spec.module_args, **spec.datamodule_args}
        return "hydra" if object_form(own) == "hydra" else "lightning"

    def write_config(self, path: str | Path) -> Path:
        """Writes the trial as a config the project's own tooling runs (YAML, the checkpoint's
        path as a comment): a Hydra experiment config (:meth:`hydra_experiment`) for a Hydra
        project, else a LightningCLI config (:meth:`lightning_config`); never over an existing
        file.

        Raises:
            SweepError: If ``path`` exists.
        """
        path = Path(path)
        if path.exists():
            raise SweepError(f"--config-out: {path} exists and is not overwritten. Fix: name "
                             "another file, or remove it first")
        header = (f"# lightsweep: best trial {self.trial_id}, {self.metric}={self.value:.4f} at "
                  f"epoch {self.epoch}\n# ckpt_path: {self.checkpoint}\n")
        if self.config_form() == "hydra":
            body = yaml.safe_dump(self.hydra_experiment(), sort_keys=False)
            header = ("# @package _global_\n" + header
                      + f"# trains it: experiment={path.stem} (with this file in the project's "
                        "configs/experiment/)\n")
        else:
            body = yaml.safe_dump(self.lightning_config(), sort_keys=False)
        atomic_write_text(path, header + body)
        return path


def _kept_checkpoint(record: TrialRecord, metric: str, mode: str) -> EpochRecord | None:
    for entry in record.ranked_epochs(metric, mode):
        if entry.checkpoint and Location.parse(entry.checkpoint).is_file():
            return entry
    return None


def fetch_best(experiment: str | Location, objective: str | None = None) -> BestTrial:
    """The best trial over all epochs of all trials that reported the metric; with several
    objectives (or constraints), the member of the Pareto front (:func:`pareto_front`) best in
    ``objective``.

    Args:
        experiment: The experiment directory, or its cloud URI.
        objective: The objective to pick by (default: the sweep's first, ``metric``).

    Raises:
        SweepError: If the directory is no experiment, ``objective`` is none of the sweep's,
            or no trial has reported yet.
    """
    ledger = Ledger.load(experiment)
    metric, mode = ledger.spec.metric, ledger.spec.mode
    if objective is not None and objective != metric:
        modes = {o.metric: o.mode for o in ledger.spec.objective_list}
        if objective not in modes:
            raise SweepError(f"--objective: {objective!r} is not an objective of this sweep. "
                             f"Fix: name one of {', '.join(modes)}")
        metric, mode = objective, modes[objective]
    if ledger.pareto:
        front = pareto_front(ledger)
        if front:
            chosen = sorted(front, key=lambda b: b.values[metric] if b.values else 0.0,
                            reverse=mode == "max")[0]
            return dataclasses.replace(chosen, metric=metric, value=(chosen.values or {})[metric])
        if ledger.fronts() and ledger.spec.constraints:
            raise SweepError(
                f"{experiment}: no trial satisfies the constraints "
                f"({', '.join(ledger.spec.constraints)}). Fix: relax them in a new sweep; "
                "`leaderboard` shows how far each trial missed")
    else:
        for record in ledger.ranked():
            best = record.best_epoch(metric, mode)
            kept = _kept_checkpoint(record, metric, mode)
            if best is None or kept is None or kept.checkpoint is None:
                continue
            return BestTrial(
                trial_id=record.trial_id, config=record.config, metric=metric,
                value=best.metrics[metric], epoch=best.epoch, checkpoint=kept.checkpoint,
                checkpoint_epoch=kept.epoch, spec=ledger.spec,
                schedule=record.schedule() if record.lineage else None,
            )
    raise SweepError(
        f"{experiment}: no trial has reported {metric!r} with a checkpoint yet. Fix: wait for "
        "the first epoch to end, or check that the LightningModule logs this metric"
    )


def pareto_front(experiment: str | Location | Ledger) -> list[BestTrial]:
    """The trials on the Pareto front of a sweep of several objectives (or of constraints):
    those no other trial beats in every objective, among those that satisfy the constraints
    (front 1), each at its last scored epoch, with a checkpoint. Ordered by spread along the
    front, its ends first.

    Args:
        experiment: The experiment directory, its cloud URI, or its loaded record.
    """
    ledger = experiment if isinstance(experiment, Ledger) else Ledger.load(experiment)
    metrics = [o.metric for o in ledger.spec.objective_list]
    found = []
    for trial_id, front in ledger.fronts().items():
        record = ledger.trials[trial_id]
        point = record.last_scored_epoch(metrics)
        if front != 1 or point is None or total_violation(
                ledger.spec.constraint_list, point.metrics) > 0:
            continue
        kept = next((e for e in reversed(record.history) if e.epoch <= point.epoch
                     and e.checkpoint and Location.parse(e.checkpoint).is_file()), None)
        if kept is None or kept.checkpoint is None:
            continue
        found.append(BestTrial(
            trial_id=trial_id, config=record.config, metric=ledger.spec.metric,
            value=point.metrics[ledger.spec.metric], epoch=point.epoch,
            checkpoint=kept.checkpoint, checkpoint_epoch=kept.epoch, spec=ledger.spec,
            values={m: point.metrics[m] for m in ledger.spec.shown_metrics
                    if m in point.metrics}))
    return found
