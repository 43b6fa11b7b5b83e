"""SweepSpec: a sweep file plus command-line overrides, validated, and the one home of defaults.

A sweep file is YAML::

    module: lightning_modules.classifier:Classifier
    datamodule: lightning_modules.datamodules:MNIST1DDataModule
    module_args: {arch: cnn1d, input_shape: [40]}
    datamodule_args: {}
    trainer_args: {}
    space:
      module.lr: {loguniform: [1e-4, 1e-1]}
      datamodule.batch_size: {choice: [32, 64, 128]}
      module.net.init_args.width: {int: [16, 64]}   # inside an object (tuning.config.space)
    config: path/to/lightning_cli_config.yaml      # a base (tuning.config.lightning_config)
    metric: val/acc                  # or several: [val/acc, model/params] with mode: [max, min]
    mode: max
    constraints: ["model/latency_ms <= 5"]         # a trial that breaks one ranks after the rest
    search: {num_samples: 16, seed: 0}
    scheduler: {max_epochs: 20, grace_period: 2, reduction_factor: 3}
    resources: {workers_per_trial: 1, cpus_per_worker: 1, gpus_per_worker: 0, max_concurrent: null,
                placement: PACK, float32_matmul_precision: null}   # 0.5: two trials per GPU
    checkpoints: {num_to_keep: 2}
    failures: {max_retries: 2, fail_fast: false}

Structure and types are checked here; checks that need the user's classes or the hardware live
in :mod:`tuning.config.checks`.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tuning.config import hydra_project
from tuning.config.gpus import share_error
from tuning.config.hydra_project import hydra_path, read_hydra_project, shown_key
from tuning.config.lightning_config import merge, resolve_lightning_config, section
from tuning.config.objects import has_path, set_path
from tuning.config.space import ROUTES, ObjectChoice, SearchSpace, canonical_key, split_key
from tuning.config.yaml_files import interpolate, read_yaml
from tuning.errors import SweepError
from tuning.record.location import Location
from tuning.record.records import is_finite_number

logger = logging.getLogger(__name__)

# Validation context keys: the space the field's validator parsed, for the spec to keep; and
# a spec read back from what a validated one wrote (an experiment's record), whose checks of
# meaning passed when it was written and are not asked again.
_PARSED = "search_space"
_READ = "read"


def _reading(info: ValidationInfo) -> bool:
    return isinstance(info.context, dict) and bool(info.context.get(_READ))


# package.module:ClassName, or LightningCLI's package.module.ClassName
IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*(:[A-Za-z_][\w.]*|\.[A-Za-z_]\w*)$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SearchConfig(_Section):
    """How many configurations to try, how to propose them, and the seed that makes the search
    reproducible.

    ``sampler`` is Optuna's TPE (``tpe``, which learns from finished and stopped trials; with
    several objectives, Optuna's multi-objective TPE), NSGA-II (``nsga2``, Optuna's genetic
    algorithm for several objectives) or independent uniform draws (``random``, the baseline the
    others are measured against).
    """

    num_samples: int = Field(10, gt=0)
    seed: int = 0
    sampler: Literal["tpe", "nsga2", "random"] = "tpe"
    # More keyword arguments of the sampler's class (TPE's n_startup_trials, say), as a Hydra
    # sweeper config gives them.
    sampler_args: dict[str, Any] = {}


def rung_milestones(max_epochs: int, grace_period: int, reduction_factor: int) -> list[int]:
    """ASHA's rungs: ``grace_period`` times powers of ``reduction_factor``, below
    ``max_epochs``."""
    milestones, epoch = [], grace_period
    while epoch < max_epochs:
        milestones.append(epoch)
        epoch *= reduction_factor
    return milestones


PBT_FIELDS = ("perturbation_interval", "quantile_fraction", "resample_probability", "mutate")


class SchedulerConfig(_Section):
    """Trials run at most ``max_epochs``. ``name: asha`` stops weak trials early at rungs that
    start at ``grace_period`` epochs and grow by ``reduction_factor``; ``name: fifo`` runs every
    trial to ``max_epochs`` (no early stopping); ``name: pbt`` is population-based training
    (:mod:`tuning.driver.pbt`): every ``perturbation_interval`` epochs a trial in the bottom
    ``quantile_fraction`` continues from a copy of a top trial's checkpoint, with the top trial's
    searched values perturbed (or, with ``resample_probability``, drawn anew from ``space``).
    ``mutate`` names the searched keys PBT changes (default: all); the others, such as a layer's
    width, which a checkpoint's weights fix, are the donor's with its weights."""

    name: Literal["asha", "fifo", "pbt"] = "asha"
    max_epochs: int = Field(10, gt=0)
    grace_period: int = Field(1, gt=0)
    reduction_factor: int = Field(3, ge=2)
    perturbation_interval: int | None = Field(None, gt=0)
    quantile_fraction: float | None = Field(None, ge=0, le=0.5)
    resample_probability: float | None = Field(None, ge=0, le=1)
    mutate: list[str] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _grace_within_max(self) -> SchedulerConfig:
        if self.grace_period > self.max_epochs:
            raise ValueError(
                f"grace_period ({self.grace_period}) exceeds max_epochs ({self.max_epochs}); "
                "fix: lower scheduler.grace_period or raise scheduler.max_epochs"
            )
        given = [f for f in PBT_FIELDS if getattr(self, f) is not None]
        if given and self.name != "pbt":
            raise ValueError(
                f"{', '.join(given)} {'apply' if len(given) > 1 else 'applies'} only to "
                "population-based training; "
                f"fix: set scheduler.name: pbt, or remove them"
            )
        if self.name == "pbt" and self.pbt_interval >= self.max_epochs:
            raise ValueError(
                f"perturbation_interval ({self.pbt_interval}) must be below max_epochs "
                f"({self.max_epochs}), or no trial is ever perturbed; fix: lower "
                "scheduler.perturbation_interval or raise scheduler.max_epochs"
            )
        return self

    @property
    def rungs(self) -> list[int]:
        """The epochs at which early stopping compares trials: ``grace_period`` times powers of
        ``reduction_factor``, below ``max_epochs`` (a trial there has ended anyway)."""
        return rung_milestones(self.max_epochs, self.grace_period, self.reduction_factor)

    # The defaults of the PBT fields, stated once (None above means "not given").
    @property
    def pbt_interval(self) -> int:
        return self.perturbation_interval or max(1, self.max_epochs // 4)

    @property
    def pbt_quantile(self) -> float:
        return 0.25 if self.quantile_fraction is None else self.quantile_fraction

    @property
    def pbt_resample(self) -> float:
        return 0.25 if self.resample_probability is None else self.resample_probability


class ResourcesConfig(_Section):
    """What one trial takes. ``max_concurrent`` defaults to as many trials as fit at once.

    ``placement``: ``PACK`` puts a trial's workers on as few nodes as possible (fast
    collectives); ``SPREAD`` puts them on as many as possible (one node's loss costs fewer).

    ``trial_runner``: ``train`` makes every trial a Ray Train run (its workers started for it);
    ``inline`` fits a one-worker trial in Tune's own trial process, reused from trial to trial
    (:mod:`tuning.trial.session`): no Train run, no processes started per trial.

    ``warm_workers``: Train workers started ahead of need, imported, on a node's CPUs that no
    trial holds (:mod:`tuning.trial.warm_pool`): at most this many wait per node for the next
    trials. 0 starts none.
    """

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)

    workers_per_trial: int = Field(1, gt=0, strict=True)
    cpus_per_worker: float = Field(1.0, gt=0)
    gpus_per_worker: float = Field(0.0, ge=0)
    max_concurrent: int | None = Field(None, gt=0, strict=True)
    placement: Literal["PACK", "SPREAD"] = "PACK"
    # torch.set_float32_matmul_precision in every worker: "high" lets float32 matrix products
    # run as TF32 on Ampere and later. None leaves PyTorch's default ("highest").
    float32_matmul_precision: Literal["highest", "high", "medium"] | None = None
    trial_runner: Literal["train", "inline"] = "train"
    # Train workers kept started ahead on a node, torch and the user's classes imported, for the
    # next trials (tuning.trial.warm_pool), where the node has CPUs no trial holds; each holds
    # its imports' memory while it waits (bench/results/warm_pool.json).
    warm_workers: int = Field(1, ge=0, strict=True)
    # Leave out of space's trainer.precision the precisions this machine only emulates
    # (bfloat16 on a CPU without AVX-512 BF16, AMX or Arm's BF16), saying so in one line.
    native_precisions: bool = False

    @field_validator("gpus_per_worker")
    @classmethod
    def _gpus_shareable(cls, value: float, info: ValidationInfo) -> float:
        # workers_per_trial, declared first, is validated first (absent if it was invalid).
        reason = share_error(info.data.get("workers_per_trial", 1), value)
        if reason is not None:
            raise ValueError(reason)
        return value

    @model_validator(mode="after")
    def _inline_is_one_process(self) -> ResourcesConfig:
        if self.trial_runner == "inline" and self.workers_per_trial > 1:
            raise SweepError(
                f"resources.trial_runner: inline fits a trial in one process, and "
                f"workers_per_trial is {self.workers_per_trial}. Fix: set workers_per_trial: 1, "
                "or trial_runner: train for DDP across workers"
            )
        return self


# Metrics lightsweep measures itself at each epoch's end when a sweep's objectives or constraints
# name them (tuning.trial.model_cost): the model's parameter count, and the median time of one
# sample's forward pass on the trial's device, in milliseconds.
BUILTIN_METRICS = ("model/params", "model/latency_ms")


class Objective(_Section):
    """One objective of a sweep: a reported metric and whether larger (``max``) is better."""

    metric: str = Field(min_length=1)
    mode: Literal["min", "max"]


CONSTRAINT = re.compile(r"^\s*(?P<metric>[^\s<>=]+)\s*(?P<op><=|>=)\s*(?P<bound>\S+)\s*$")


class Constraint(_Section):
    """``metric <= bound`` or ``metric >= bound``, as a sweep file writes it."""

    metric: str
    op: Literal["<=", ">="]
    bound: float

    @classmethod
    def parse(cls, text: str, field: str) -> Constraint:
        match = CONSTRAINT.match(text)
        bound = None
        if match:
            try:
                bound = float(match["bound"])
            except ValueError:
                bound = None
        if match is None or bound is None or not math.isfinite(bound):
            raise SweepError(
                f"{field}: {text!r} is not a constraint. Fix: write METRIC <= NUMBER or "
                "METRIC >= NUMBER, e.g. \"model/latency_ms <= 5\"")
        return cls(metric=match["metric"], op=match["op"], bound=bound)  # type: ignore[arg-type]

    def violation(self, value: float) -> float:
        """How far ``value`` breaks the constraint: 0 or less when it holds (Optuna's sign)."""
        return value - self.bound if self.op == "<=" else self.bound - value

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


def violations(constraints: list[Constraint], metrics: Mapping[str, Any]) -> dict[str, float]:
    """Each constraint's violation by ``metrics`` (0 or less: it holds), by its text, as Optuna
    takes them; a constrained metric they lack breaks its constraint infinitely (nothing shows
    that it holds)."""
    found = {}
    for constraint in constraints:
        value = metrics.get(constraint.metric)
        found[str(constraint)] = (constraint.violation(float(value)) if is_finite_number(value)
                                  else math.inf)
    return found


def total_violation(constraints: list[Constraint], metrics: Mapping[str, Any]) -> float:
    """How far ``metrics`` break ``constraints``, summed (0: all hold; see :func:`violations`)."""
    return sum(max(0.0, v) for v in violations(constraints, metrics).values())


class CheckpointsConfig(_Section):
    """How many checkpoints each trial keeps (the best by the metric, and always the latest)."""

    num_to_keep: int = Field(2, gt=0)


class BudgetConfig(_Section):
    """What the sweep may spend, counting only the time its trials run (not the time a killed
    sweep waited before ``resume``): ``worker_hours`` (each trial's epochs' wall time, start-up
    included, times its workers: GPU-hours with GPU workers) and ``wall_hours`` (the time any
    trial ran). None: no limit (tuning.driver.budget)."""

    worker_hours: float | None = Field(None, gt=0)
    wall_hours: float | None = Field(None, gt=0)


class FailuresConfig(_Section):
    """What survives a fault.

    ``max_retries``: how often a trial restarts its worker group from its last checkpoint after a
    worker process or node dies (inline, Tune restarts the trial's process; not with
    ``fail_fast``). Exceptions raised by the user's code are not retried: they fail the trial at
    once (they would fail again), and the sweep goes on unless ``fail_fast``.
    """

    max_retries: int = Field(2, ge=0)
    fail_fast: bool = False


class WandbConfig(_Section):
    """Weights & Biases: one run per trial, grouped by the sweep, opened by the trial's rank-0
    worker alone.

    Runs are offline (files under ``EXPERIMENT_DIR/wandb``, uploaded later by ``wandb sync``)
    unless an API key is configured (``WANDB_API_KEY``, or ``wandb login``), then online; a
    ``WANDB_MODE`` the user set wins either way.
    """

    enabled: bool = True
    project: str = Field("lightsweep", min_length=1)
    entity: str | None = None
    tags: list[str] = []
    # None: decided on the launching machine (see above); "disabled" keeps a do-nothing logger
    # (what --smoke uses: callbacks that need a logger still work, and nothing is written).
    mode: Literal["online", "offline", "disabled"] | None = None


class HydraSource(_Section):
    """A Hydra project's primary config and the overrides it is composed with
    (:mod:`tuning.config.hydra_project`).

    ``root``: the project's root (``.project-root``), relative to the launch directory where it
    lies inside it (so that it names the shipped copy on a cluster), else absolute.
    """

    config: str
    overrides: list[str] = []
    root: str | None = None


class SweepSpec(BaseModel):
    """A validated sweep: what to train, what to search, how to schedule and resource it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    module: str
    datamodule: str
    # LightningCLI config files read as the base of the arguments (tuning.config.lightning_config),
    # and what they held, merged: the sweep keeps it, the files need not stay.
    config: list[str] = []
    lightning_config: dict[str, Any] = {}
    # A Hydra project's config as the base (tuning.config.hydra_project), and the config it
    # composed, interpolations kept: each trial resolves it with its own values.
    hydra: HydraSource | None = None
    hydra_config: dict[str, Any] = {}
    module_args: dict[str, Any] = {}
    datamodule_args: dict[str, Any] = {}
    trainer_args: dict[str, Any] = {}
    # LightningCLI's top-level optimizer and lr_scheduler ({class_path, init_args}), which
    # replace the module's configure_optimizers as LightningCLI does.
    optimizer: dict[str, Any] = {}
    lr_scheduler: dict[str, Any] = {}
    # Lightning callbacks built in every trial: [{ClassName: {argument: value}}] (tuning.trial.callbacks)
    callbacks: list[dict[str, dict[str, Any] | None]] = []
    space: dict[str, Any] = {}
    # The first objective (one sweep file may list several: see _objectives_from_lists).
    metric: str = Field(min_length=1)
    mode: Literal["min", "max"]
    # Every objective, the first included, when there are several; else empty.
    objectives: list[Objective] = []
    constraints: list[str] = []
    search: SearchConfig = SearchConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    resources: ResourcesConfig = ResourcesConfig()
    checkpoints: CheckpointsConfig = CheckpointsConfig()
    budget: BudgetConfig = BudgetConfig()
    failures: FailuresConfig = FailuresConfig()
    wandb: WandbConfig = WandbConfig()
    name: str | None = Field(None, pattern=r"^[\w.-]+$")
    storage: str = "runs"
    # The directory the sweep was launched from: trials on that machine run their code there,
    # so that relative paths mean what they meant (tuning.trial.worker.run_in_launch_directory).
    launch_dir: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _objectives_from_lists(cls, data: Any) -> Any:
        """``metric: [a, b]`` with ``mode: [max, min]`` is a multi-objective sweep: its first
        objective stays ``metric``/``mode`` (what single-metric readers rank by), and all of
        them go to ``objectives``."""
        if not isinstance(data, dict):
            return data
        metric, mode = data.get("metric"), data.get("mode")
        if not isinstance(metric, list) and not isinstance(mode, list):
            return data
        metrics = metric if isinstance(metric, list) else [metric]
        modes = mode if isinstance(mode, list) else [mode]
        if len(metrics) != len(modes):
            raise SweepError(
                f"mode: {len(modes)} mode(s) for {len(metrics)} metric(s). Fix: give one mode "
                "per metric, in the same order, e.g. metric: [val/acc, model/params] with "
                "mode: [max, min]")
        if not metrics:
            raise SweepError("metric: an empty list. Fix: name at least one metric")
        if len(set(map(str, metrics))) != len(metrics):
            raise SweepError(f"metric: {metrics} names a metric twice. Fix: name each once")
        objectives = [{"metric": m, "mode": d} for m, d in zip(metrics, modes, strict=True)]
        return {**data, "metric": metrics[0], "mode": modes[0],
                "objectives": objectives if len(objectives) > 1 else []}

    @field_validator("module", "datamodule")
    @classmethod
    def _import_path(cls, value: str) -> str:
        if not IMPORT_PATH.match(value):
            raise ValueError(
                f"{value!r} is not an import path; fix: write it as package.module:ClassName "
                "(or package.module.ClassName)"
            )
        return value

    @field_validator("callbacks")
    @classmethod
    def _one_class_per_entry(
        cls, value: list[dict[str, dict[str, Any] | None]]
    ) -> list[dict[str, dict[str, Any] | None]]:
        for entry in value:
            if len(entry) != 1:
                raise ValueError(
                    f"{entry!r} names {len(entry)} classes; fix: write each callback as its own "
                    "entry, - ClassName: {argument: value}"
                )
        return value

    @field_validator("storage")
    @classmethod
    def _storage(cls, value: str) -> str:
        Location.parse(value)  # raises ValueError for a malformed URI
        return value

    @field_validator("space")
    @classmethod
    def _parse_space(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        context = info.context if isinstance(info.context, dict) else None
        if not (context and context.get(_READ)):
            parsed = SearchSpace.parse(value)  # raises SweepError naming the key
            if context is not None:
                context[_PARSED] = parsed
        return {canonical_key(k): v for k, v in value.items()}  # model.lr -> module.lr

    @model_validator(mode="after")
    def _keep_parsed_space(self, info: ValidationInfo) -> SweepSpec:
        """The space its validator parsed becomes :attr:`search_space` (the cached property's
        own slot): a sweep's space is parsed once, where it is validated, and never again (the
        trials get the spec pickled, parsed space and all)."""
        if isinstance(info.context, dict) and _PARSED in info.context:
            self.__dict__["search_space"] = info.context.pop(_PARSED)
        return self

    def searched_over_fixed(self) -> list[str]:
        """The searched keys that the sweep file also fixes (in ``*_args``, or inside an object
        there): the search overrides the fixed value, as it overrides a base config's."""
        found = []
        for route in ROUTES:
            fixed = self.own_args(route)
            found += [key for arg, key in self.search_space.keys_for(route).items()
                      if key in self.search_space.distributions and has_path(fixed, arg)]
        return found

    @model_validator(mode="after")
    def _objectives_agree(self, info: ValidationInfo) -> SweepSpec:
        if _reading(info):
            return self
        if self.objectives and (self.objectives[0].metric, self.objectives[0].mode) != (
                self.metric, self.mode):
            raise SweepError("objectives: the first must be metric and mode. Fix: write the "
                             "objectives as metric: [a, b] with mode: [max, min] alone")
        for i, text in enumerate(self.constraints):
            Constraint.parse(text, f"constraints[{i}]")
        if self.objectives and self.scheduler.name == "pbt":
            raise SweepError(
                "scheduler.name: pbt ranks trials by one metric, and metric names "
                f"{len(self.objectives)}. Fix: keep one metric, or use scheduler.name: asha "
                "(Pareto rungs)")
        return self

    @model_validator(mode="after")
    def _pbt_can_mutate(self, info: ValidationInfo) -> SweepSpec:
        if self.scheduler.name != "pbt" or _reading(info):
            return self
        if self.budget.worker_hours is not None or self.budget.wall_hours is not None:
            raise SweepError(
                "budget: population-based training trains one population to its end together; "
                "a budget would stop it part-way. Fix: leave budget out, or use scheduler.name: "
                "asha")
        if self.resources.trial_runner == "inline":
            raise SweepError(
                "resources.trial_runner: inline does not run population-based training, whose "
                "trials each restart as a Train run from another's checkpoint. Fix: set "
                "trial_runner: train, or scheduler.name: asha"
            )
        space = self.search_space
        if not space.distributions:
            raise SweepError(
                "scheduler.name: pbt mutates the searched values of space, and space searches "
                "none. Fix: search at least one value (e.g. module.lr: {loguniform: [1e-4, 1e-1]})"
            )
        for raw in self.scheduler.mutate or []:
            if canonical_key(raw) not in space.distributions:
                raise SweepError(
                    f"scheduler.mutate: {raw!r} is not searched in space. Fix: name keys of "
                    f"space ({', '.join(space.distributions)})"
                )
        for key, dist in space.distributions.items():
            if isinstance(dist, ObjectChoice):
                raise SweepError(
                    f"space.{key}: a choice among objects cannot change in the middle of a "
                    "trial, as population-based training changes values. Fix: fix it in "
                    f"{split_key(key)[0]}_args and search its arguments, or use scheduler.name: asha"
                )
        return self

    @property
    def pbt_mutated(self) -> list[str]:
        """The searched keys population-based training changes."""
        if self.scheduler.mutate is None:
            return list(self.search_space.distributions)
        return [canonical_key(k) for k in self.scheduler.mutate]

    @property
    def objective_list(self) -> list[Objective]:
        """Every objective: several for a multi-objective sweep, else ``metric`` alone."""
        return list(self.objectives) or [Objective(metric=self.metric, mode=self.mode)]

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    # Parsed once per spec (it is frozen; a changed copy is validated anew): the driver, the
    # checks, the searcher and every trial read these again and again.
    @cached_property
    def constraint_list(self) -> list[Constraint]:
        return [Constraint.parse(text, f"constraints[{i}]")
                for i, text in enumerate(self.constraints)]

    @property
    def shown_metrics(self) -> list[str]:
        """The objectives' metrics, then the constrained ones: what a Pareto ranking shows."""
        return list(dict.fromkeys([*(o.metric for o in self.objective_list),
                                   *(c.metric for c in self.constraint_list)]))

    @property
    def measured_metrics(self) -> list[str]:
        """The built-in metrics (:data:`BUILTIN_METRICS`) that the trials must measure."""
        named = {o.metric for o in self.objective_list} | {c.metric for c in self.constraint_list}
        return [m for m in BUILTIN_METRICS if m in named]

    @cached_property
    def search_space(self) -> SearchSpace:
        return SearchSpace.parse(self.space)

    @property
    def direction(self) -> Literal["maximize", "minimize"]:
        """Optuna's name for ``mode``."""
        return "maximize" if self.mode == "max" else "minimize"

    @property
    def directions(self) -> list[Literal["maximize", "minimize"]]:
        """Optuna's name for each objective's mode."""
        return ["maximize" if o.mode == "max" else "minimize" for o in self.objective_list]

    @property
    def accelerator(self) -> str:
        """The Lightning accelerator every trial's workers run on."""
        return "gpu" if self.resources.gpus_per_worker > 0 else "cpu"

    @property
    def shown_keys(self) -> dict[str, str]:
        """Each searched key by the name the user's config gives it: a Hydra project's
        ``model.optimizer.lr`` rather than lightsweep's ``module.optimizer.lr``."""
        if not self.hydra_config:
            return {}
        return {key: shown_key(key) for key in self.search_space.searched}

    def enter_project(self, base: str | None = None) -> None:
        """Sets a Hydra project's root up in this process (``PROJECT_ROOT``, the import path),
        its relative root taken from ``base`` (default: the launch directory)."""
        if self.hydra is not None:
            hydra_project.enter_project(
                hydra_project.project_root(self.hydra.root, base or self.launch_dir))

    def hydra_trial(self, config: Mapping[str, Any] | None = None,
                    output_dir: str | None = None) -> dict[str, Any]:
        """The sections of the Hydra config that lightsweep reads, resolved for the trial whose
        config is ``config`` (the base's values where None), its Hydra output directory
        ``output_dir``, and this process's working directory as Hydra's ``runtime.cwd``."""
        values = {}
        if config is not None:
            space = self.search_space
            values = {hydra_path(key): value for key, value in space.values(config).items()}
        return hydra_project.resolve(self.hydra_config, values,
                                     output_dir or hydra_project.CHECK_OUTPUT_DIR, os.getcwd())

    def _base_sections(self, resolved: Mapping[str, Any], route: str) -> dict[str, Any]:
        if resolved:
            return hydra_project.route_arguments(resolved, route)
        if self.lightning_config:
            return section(self.lightning_config, route)
        return {}

    def own_args(self, route: str) -> dict[str, Any]:
        """The fixed arguments of ``route`` that the sweep file itself gives."""
        return {"module": self.module_args, "datamodule": self.datamodule_args,
                "trainer": self.trainer_args, "optimizer": self.optimizer,
                "lr_scheduler": self.lr_scheduler}[route]

    def args_section(self, route: str) -> dict[str, Any]:
        """The fixed arguments of ``route``: the base's (a LightningCLI or Hydra config), under
        the sweep file's."""
        resolved = self.hydra_trial() if self.hydra_config else {}
        return self._args_over(resolved, route)

    def _args_over(self, resolved: Mapping[str, Any], route: str) -> dict[str, Any]:
        base = self._base_sections(resolved, route)
        if not base:
            return self.own_args(route)
        merged: dict[str, Any] = merge(base, self.own_args(route))
        return merged

    def trial_args(self, config: Mapping[str, Any],
                   output_dir: str | None = None) -> dict[str, dict[str, Any]]:
        """Keyword arguments per route for one trial: fixed arguments, with the trial's values
        set at their paths (inside objects too). A Hydra config is resolved for the trial, its
        output directory ``output_dir``."""
        space = self.search_space
        values = space.values(config)
        resolved = self.hydra_trial(config, output_dir) if self.hydra_config else {}
        args = {}
        for route in ROUTES:
            route_args = copy.deepcopy(self._args_over(resolved, route))
            # Shallow paths first: a chosen object, then the values searched inside it.
            keys = sorted(space.keys_for(route).items(), key=lambda item: item[0].count("."))
            for path, key in keys:
                set_path(route_args, path, values[key], f"space.{key}")
            args[route] = route_args
        return args

    def possible_values(self, route: str, arg: str) -> list[Any] | None:
        """Every value ``route``'s argument ``arg`` can take in this sweep (None: continuous)."""
        key = f"{route}.{arg}"
        if key in self.search_space.distributions or key in self.search_space.fixed:
            return self.search_space.possible_values(key)
        fixed = self.args_section(route)
        return [fixed[arg]] if arg in fixed else None

    def given(self, route: str) -> set[str]:
        """The top-level arguments of ``route`` this sweep sets (fixed or searched)."""
        searched = {path.split(".")[0] for path in self.search_space.keys_for(route)}
        return {*self.args_section(route), *searched}

    def without_precisions(self, dropped: list[str]) -> SweepSpec:
        """A copy whose ``space`` choice of ``trainer.precision`` lacks ``dropped`` (one value
        left is fixed)."""
        data = self.model_dump()
        kept = [p for p in data["space"]["trainer.precision"]["choice"] if p not in dropped]
        data["space"]["trainer.precision"] = {"choice": kept} if len(kept) > 1 else kept[0]
        return _validate(data, source="sweep")

    @classmethod
    def read(cls, data: Mapping[str, Any]) -> SweepSpec:
        """The spec a validated one wrote (``model_dump(mode="json")``, as an experiment's
        record keeps it), read back without asking its checks again; its space is parsed when
        first used."""
        return cls.model_validate(data, context={_READ: True})

    def with_overrides(self, overrides: Mapping[str, Any]) -> SweepSpec:
        """Returns a copy with dotted-path overrides (``"search.num_samples"``) applied."""
        data = self.model_dump()
        return _validate(_apply(data, overrides), source="sweep")


def _apply(data: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    for path, value in overrides.items():
        if value is None:
            continue
        node = data
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return data


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: Any = SweepSpec
    for part in loc[:-1]:
        field = model.model_fields.get(part)
        model = field.annotation if field else None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
    return list(model.model_fields)


def _format(error: Mapping[str, Any]) -> str:
    loc = tuple(error["loc"])
    where = ".".join(str(p) for p in loc) or "sweep"
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc)
        hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
        return f"{where}: unknown key. Fix: remove it or correct its spelling{hint}"
    if kind == "missing":
        return f"{where}: required but missing. Fix: add '{loc[-1]}: ...' to the sweep file"
    message = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"{where}: {message}{shown}"


def _validate(data: Any, source: str) -> SweepSpec:
    if not isinstance(data, dict):
        raise SweepError(f"{source}: the sweep file must be a YAML mapping of keys to values")
    try:
        return SweepSpec.model_validate(data, context={})
    except ValidationError as exc:
        lines = "\n  ".join(_format(e) for e in exc.errors())
        raise SweepError(f"{source}: invalid sweep file:\n  {lines}") from None


def load_spec(path: str | Path | None, overrides: Mapping[str, Any] | None = None) -> SweepSpec:
    """Reads, merges and validates a sweep file.

    Args:
        path: The YAML sweep file; None for a sweep that a Hydra project alone describes
            (``overrides["hydra"]``).
        overrides: Dotted paths to values (``{"scheduler.max_epochs": 3}``); None values are
            ignored, so unset command-line flags can be passed through. ``"config"`` adds
            LightningCLI config files, ``"hydra"`` names a Hydra project's config and overrides
            (:func:`tuning.config.hydra_project.read_hydra_project`).

    Raises:
        SweepError: For a missing file, broken YAML, or any invalid field.
    """
    overrides = dict(overrides or {})
    extra_configs = overrides.pop("config", None) or []
    hydra = overrides.pop("hydra", None)
    if path is None:
        data: Any = {}
        sweep_dir, source = Path.cwd(), "--hydra"
    else:
        path = Path(path)
        data = read_yaml(path, "sweep file",
                         "pass a YAML file, e.g. search_spaces/mnist1d_cnn.yaml")
        sweep_dir, source = path.parent, str(path)
    if isinstance(data, dict):
        data = interpolate(data, source, keep=("hydra",))
        data = _apply(data, overrides)
        if (hydra or data.get("hydra")) and (extra_configs or data.get("config")):
            raise SweepError("config and hydra: a sweep takes one base, a LightningCLI config "
                             "or a Hydra project. Fix: keep one of the two")
        data = read_hydra_project(data, sweep_dir, hydra)
        data = resolve_lightning_config(data, sweep_dir, list(extra_configs))
    spec = _validate(data, source=source)
    both = spec.searched_over_fixed()
    if both:
        logger.info("space: %s searched; the value%s fixed in the sweep file's arguments %s a "
                    "default the search overrides", ", ".join(both), "s" if len(both) > 1 else "",
                    "are" if len(both) > 1 else "is")
    return spec
