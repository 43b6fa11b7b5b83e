"""Checks of a sweep against the user's classes and the hardware it will run on.

Everything here runs before any trial starts (the classes are checked while Ray starts), so a
bad sweep fails in seconds with a message naming the field and the fix, not minutes later inside
a worker.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from tuning.config import hydra_project
from tuning.config.cpu_precision import (
    BF16_PRECISIONS,
    SLOW_RATIO,
    bf16_slowdown,
    slow_bf16_warning,
)
from tuning.config.gpus import Gpu, check_precision_on, cluster_gpus, local_gpus
from tuning.config.lightning_config import ROUTE_SECTIONS
from tuning.config.objects import CLASS_PATH, check_hydra_objects, check_object, check_path, validate
from tuning.config.shipping import unshipped_paths
from tuning.config.space import Choice, Distribution, IntRange, LogUniform, ObjectChoice, Uniform
from tuning.config.spec import SweepSpec
from tuning.config.targets import (
    import_from_launch_directory,
    init_parameters,
    lightning_namespace,
    resolve_class,
)
from tuning.errors import SweepError
from tuning.trial.callbacks import check_callbacks

# Lightning's precision names, and the short aliases it accepts for them.
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true",
              "transformer-engine", "transformer-engine-float16")
PRECISION_ALIASES: dict[Any, str] = {
    32: "32-true", "32": "32-true", 16: "16-mixed", "16": "16-mixed", "bf16": "bf16-mixed",
    64: "64-true", "64": "64-true",
}
# On CPU, Lightning silently runs "16-mixed" as "bf16-mixed", and float16 kernels are missing:
# a sweep over both would train the same thing twice under two names.
CPU_PRECISIONS = ("32-true", "bf16-mixed", "bf16-true", "64-true")

# Trainer arguments that lightsweep sets itself, and where the user sets them instead.
RESERVED_TRAINER_ARGS = {
    "strategy": "lightsweep runs Ray's DDP strategy",
    "plugins": "lightsweep runs Ray's cluster environment",
    "accelerator": "set resources.gpus_per_worker",
    "devices": "set resources.workers_per_trial",
    "num_nodes": "set resources.workers_per_trial",
    "max_epochs": "set scheduler.max_epochs",
    "callbacks": "list them under callbacks: in the sweep file, e.g. - EarlyStopping: {monitor: "
                 "val/loss}",
}


@dataclass(frozen=True)
class Hardware:
    """The resources a sweep can use: a whole Ray cluster, or this machine."""

    cpus: float
    gpus: float
    gpu_kinds: tuple[Gpu, ...] = ()  # the kinds of card among ``gpus``

    @classmethod
    def local(cls) -> Hardware:
        import torch

        return cls(cpus=float(os.cpu_count() or 1), gpus=float(torch.cuda.device_count()),
                   gpu_kinds=local_gpus())

    @classmethod
    def of_cluster(cls, resources: Mapping[str, float]) -> Hardware:
        return cls(cpus=resources.get("CPU", 0.0), gpus=resources.get("GPU", 0.0),
                   gpu_kinds=cluster_gpus(resources))


def normalize_precision(value: Any) -> str:
    """Lightning's canonical name for a precision setting; raises SweepError if unknown."""
    name = PRECISION_ALIASES.get(value, value)
    if name not in PRECISIONS:
        raise SweepError(
            f"trainer.precision: unknown precision {value!r}. Fix: use one of {', '.join(PRECISIONS)}"
        )
    return str(name)


def _where(spec: SweepSpec, route: str, arg: str) -> str:
    key = f"{route}.{arg}"
    if key in spec.space:
        return f"space.{key}"
    if arg in spec.args_section(route) and arg not in spec.own_args(route):
        return f"config {ROUTE_SECTIONS[route]}.{arg}"
    return f"{route}_args.{arg}"


def _representative(dist: Distribution) -> Any:
    if isinstance(dist, LogUniform | Uniform | IntRange):
        return dist.low
    if isinstance(dist, Choice):
        return dist.values[0]
    raise AssertionError(dist)


# One trial's arguments by route, with a label naming the branches it takes ("" for the first).
RepresentativeTrial = tuple[str, dict[str, dict[str, Any]]]


def representative_trials(spec: SweepSpec) -> list[RepresentativeTrial]:
    """The arguments of trials that between them take every branch of every conditional
    choice, each with a label saying which (for messages); the other values at a bound or
    first choice."""
    space = spec.search_space
    base = {key: _representative(dist) for key, dist in space.searched.items()}
    configs = [("", base)]
    for key, dist in space.distributions.items():
        if isinstance(dist, ObjectChoice):
            configs += [(f"space.{key} ({label}): ", {**base, key: label})
                        for label in dist.labels[1:]]
    return [(label, spec.trial_args(config)) for label, config in configs]


def _check_paths(spec: SweepSpec, route: str, cls: type, args: dict[str, Any]) -> None:
    """Every searched path into ``route``'s objects runs through arguments their classes take."""
    space = spec.search_space
    for path, key in space.keys_for(route).items():
        if "." in path:
            check_path(cls, args, path, f"space.{key}")
        dist = space.distributions.get(key)
        if isinstance(dist, ObjectChoice):
            for branch in dist.branches:
                for inner, _ in branch.searched:
                    check_path(cls, {path: branch.template}, f"{path}.{inner}",
                               f"space.{branch.key(key, inner)}")


def _check_objects(spec: SweepSpec, trials: list[RepresentativeTrial], route: str, cls: type,
                   pl: Any) -> None:
    """Type-checks ``route``'s arguments, objects in them included, for every branch of the
    space, as LightningCLI would."""
    for label, trial_args in trials:
        args = trial_args[route]
        if label == "":
            _check_paths(spec, route, cls, args)
        where = label or (f"{route}_args" if not spec.lightning_config
                          else f"config {ROUTE_SECTIONS[route]} / {route}_args")
        validate(cls, args, pl, where)


def _check_top_level_objects(spec: SweepSpec, trials: list[RepresentativeTrial]) -> None:
    """LightningCLI's top-level optimizer and lr_scheduler: classes that import and take their
    arguments (searched ones included)."""
    for route in ("optimizer", "lr_scheduler"):
        keys = spec.search_space.keys_for(route)
        searched_inside = [key for path, key in keys.items() if path != CLASS_PATH]
        if searched_inside and CLASS_PATH not in keys and not spec.args_section(route):
            # The trial's values alone would make {lr: 0.01}, which is no object to build.
            raise SweepError(
                f"space.{searched_inside[0]}: there is no {route} to search in. Fix: give one "
                f"in the config or the sweep file ({route}: {{class_path: ..., init_args: "
                "{...}}), or search the module's own argument (module.NAME)")
        for label, trial_args in trials:
            obj = trial_args[route]
            if not obj and keys:
                raise SweepError(
                    f"space.{next(iter(keys.values()))}: there is no {route} to search in. Fix: "
                    f"give one in the config or the sweep file ({route}: {{class_path: ..., "
                    "init_args: {...}})")
            if obj:
                check_object(obj, f"{label}{route}")


def _check_arguments(spec: SweepSpec, route: str, cls: type, reserved: dict[str, str]) -> None:
    params, var_kw = init_parameters(cls)
    given = spec.given(route)
    for arg in sorted(given):
        if arg in reserved:
            raise SweepError(
                f"{_where(spec, route, arg)}: {arg!r} is set by lightsweep. Fix: {reserved[arg]}"
            )
        if arg not in params and not var_kw:
            raise SweepError(
                f"{_where(spec, route, arg)}: {cls.__qualname__}.__init__ takes no argument {arg!r}. "
                f"Fix: use one of {', '.join(params) or '(none)'}"
            )
    if route == "trainer":
        return
    missing = [n for n, p in params.items() if p.default is p.empty and n not in given]
    if missing:
        raise SweepError(
            f"{route}_args: {cls.__qualname__}.__init__ needs {', '.join(missing)}. "
            f"Fix: set {'them' if len(missing) > 1 else 'it'} in {route}_args or space"
        )


def _check_batch_size(spec: SweepSpec) -> None:
    field = _where(spec, "datamodule", "batch_size")
    if "batch_size" not in spec.given("datamodule"):
        return
    values = spec.possible_values("datamodule", "batch_size")
    if values is None:
        raise SweepError(
            f"{field}: a batch size must be an integer. Fix: search it with choice or int"
        )
    workers = spec.resources.workers_per_trial
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise SweepError(
                f"{field}: batch size must be a positive integer, got {value!r}"
            )
        if value % workers:
            raise SweepError(
                f"{field}: global batch size {value} does not divide evenly over "
                f"resources.workers_per_trial={workers} workers. Fix: use multiples of {workers}"
            )


def _check_precision(spec: SweepSpec) -> None:
    if "precision" not in spec.given("trainer"):
        return
    field = _where(spec, "trainer", "precision")
    values = spec.possible_values("trainer", "precision")
    if values is None:
        raise SweepError(f"{field}: precision must be fixed or a choice")
    seen: dict[str, Any] = {}
    for value in values:
        name = normalize_precision(value)
        if spec.accelerator == "cpu" and name not in CPU_PRECISIONS:
            raise SweepError(
                f"{field}: precision {value!r} cannot run on CPU (Lightning would silently run "
                f"16-mixed as bf16-mixed). Fix: use {', '.join(CPU_PRECISIONS)} on CPU, or set "
                "resources.gpus_per_worker"
            )
        if name in seen:
            raise SweepError(
                f"{field}: {seen[name]!r} and {value!r} are the same precision ({name}). "
                "Fix: list it once"
            )
        if name.startswith("transformer-engine") and find_spec("transformer_engine") is None:
            raise SweepError(
                f"{field}: precision {value!r} needs NVIDIA's Transformer Engine, which is not "
                "installed. Fix: pip install 'transformer-engine[pytorch]', or use bf16-mixed"
            )
        seen[name] = value


def check_values(spec: SweepSpec) -> None:
    """The checks that need neither the user's classes nor Ray (batch size, precision), which
    the sweep's driver runs before it starts either: a wrong value or flag is refused at once.

    Raises:
        SweepError: Naming the field and the fix.
    """
    _check_batch_size(spec)
    _check_precision(spec)
    _check_sampler_args(spec)


# Optuna's sampler classes, by search.sampler.
SAMPLER_CLASSES = {"tpe": "TPESampler", "nsga2": "NSGAIISampler", "random": "RandomSampler"}


def _check_sampler_args(spec: SweepSpec) -> None:
    if not spec.search.sampler_args:
        return
    import optuna

    cls = getattr(optuna.samplers, SAMPLER_CLASSES[spec.search.sampler])
    params, var_kw = init_parameters(cls)
    for name in spec.search.sampler_args:
        if name == "seed" or (name not in params and not var_kw):
            raise SweepError(
                f"search.sampler_args.{name}: optuna.samplers.{cls.__name__} takes no argument "
                f"{name!r} here. Fix: use one of "
                f"{', '.join(p for p in params if p != 'seed')} (the seed is search.seed)")


def check_hardware(spec: SweepSpec, hardware: Hardware) -> None:
    """Refuses a sweep whose trials could never be placed on ``hardware``, or whose precision
    a card among its GPUs cannot run."""
    res = spec.resources
    cpus = res.workers_per_trial * res.cpus_per_worker
    if cpus > hardware.cpus:
        raise SweepError(
            f"resources: a trial needs {cpus:g} CPUs (workers_per_trial={res.workers_per_trial} x "
            f"cpus_per_worker={res.cpus_per_worker:g}) but only {hardware.cpus:g} are available. "
            "Fix: lower resources.workers_per_trial or resources.cpus_per_worker"
        )
    gpus = res.workers_per_trial * res.gpus_per_worker
    if gpus > hardware.gpus:
        raise SweepError(
            f"resources.gpus_per_worker: a trial needs {gpus:g} GPUs but {hardware.gpus:g} are "
            "available. Fix: set resources.gpus_per_worker to 0 to train on CPU, or run on a "
            "machine or cluster with GPUs (--address)"
        )
    if res.gpus_per_worker:
        for precision in _swept_precisions(spec):
            check_precision_on(_where(spec, "trainer", "precision"), precision, hardware.gpu_kinds)


def _swept_precisions(spec: SweepSpec) -> list[str]:
    """The precisions the sweep's trials may run in, by Lightning's names (none where the sweep
    leaves Lightning's default)."""
    if "precision" not in spec.given("trainer"):
        return []
    return [normalize_precision(v) for v in spec.possible_values("trainer", "precision") or ()]


def max_concurrent_trials(spec: SweepSpec, hardware: Hardware) -> int:
    """How many trials run at once: as many as fit whole on ``hardware``, capped by the spec.

    Trial drivers hold no resources of their own, so this bound is what keeps a started trial
    from waiting forever for a worker group that other trials' drivers are starving.
    """
    res = spec.resources
    fits = math.floor(hardware.cpus / (res.workers_per_trial * res.cpus_per_worker))
    if res.gpus_per_worker:
        fits = min(fits, math.floor(hardware.gpus / (res.workers_per_trial * res.gpus_per_worker)))
    limits = [fits, spec.search.num_samples]
    if res.max_concurrent is not None:
        limits.append(res.max_concurrent)
    return max(1, min(limits))


def check_launch(spec: SweepSpec, local: bool, *, values_checked: bool = False) -> list[str]:
    """What ``launch``, ``resume`` and ``validate`` check: :func:`check_spec` on the user's
    classes, imported from the working directory, and the hardware of this machine for a sweep
    that runs on it (``local``; a cluster's is checked once Ray is up). ``values_checked``: the
    caller asked :func:`check_values` already.

    Returns:
        Warnings for the user: what will work, but not as they may expect (a bfloat16 sweep on
        a CPU that emulates it, :mod:`tuning.config.cpu_precision`).

    Raises:
        SweepError: Naming the field and the fix.
    """
    import_from_launch_directory()
    check_spec(spec, Hardware.local() if local else None, values=not values_checked)
    if not local:
        return _unshipped(spec)
    warning = _slow_bf16_on_this_cpu(spec)
    return [warning] if warning else []


def _unshipped(spec: SweepSpec) -> list[str]:
    """:func:`unshipped_paths` of the sweep's arguments and its classes' defaults."""
    based = bool(spec.hydra_config or spec.lightning_config)
    fields = {route: f"config {ROUTE_SECTIONS[route]}" if based else f"{route}_args"
              for route in ("module", "datamodule", "trainer")}
    args = {fields[route]: spec.args_section(route) for route in fields}
    classes = {fields["module"]: resolve_class(spec.module, "module"),
               fields["datamodule"]: resolve_class(spec.datamodule, "datamodule")}
    return unshipped_paths(args, classes, Path.cwd())


def _slow_bf16_on_this_cpu(spec: SweepSpec) -> str | None:
    """:func:`slow_bf16_warning` for a CPU sweep over bfloat16, measured on this machine (none
    where ``resources.native_precisions`` leaves such precisions out: the driver says so)."""
    precisions = _swept_precisions(spec)
    if (spec.accelerator != "cpu" or not set(precisions) & set(BF16_PRECISIONS)
            or spec.resources.native_precisions):
        return None  # nothing to measure, or to warn of
    return slow_bf16_warning(_where(spec, "trainer", "precision"), precisions, bf16_slowdown())


def emulated_precisions(spec: SweepSpec) -> tuple[list[str], float]:
    """The precisions of ``space``'s ``trainer.precision`` that this machine's CPU emulates, with
    how many times slower than float32 it runs them, for a CPU sweep whose
    ``resources.native_precisions`` asks to leave them out; ``([], 1.0)`` otherwise."""
    choice = spec.space.get("trainer.precision")
    if (not spec.resources.native_precisions or spec.accelerator != "cpu"
            or not isinstance(choice, dict) or not isinstance(choice.get("choice"), list)):
        return [], 1.0
    slow = [p for p in map(str, choice["choice"]) if p in BF16_PRECISIONS]
    if not slow:
        return [], 1.0
    slowdown = bf16_slowdown()
    return (slow, slowdown) if slowdown >= SLOW_RATIO else ([], slowdown)


def check_spec(spec: SweepSpec, hardware: Hardware | None, *, values: bool = True) -> None:
    """Checks the user's classes, their arguments, the values that need no class
    (:func:`check_values`, unless ``values`` is false) and (if given) the hardware.

    Raises:
        SweepError: Naming the field and the fix.
    """
    module_cls = resolve_class(spec.module, "module")
    datamodule_cls = resolve_class(spec.datamodule, "datamodule")
    try:
        pl = lightning_namespace(module_cls, "LightningModule")
    except SweepError as exc:
        raise SweepError(f"module: {exc}") from None
    try:
        lightning_namespace(datamodule_cls, "LightningDataModule")
    except SweepError as exc:
        raise SweepError(f"datamodule: {exc}") from None
    _check_arguments(spec, "module", module_cls, {})
    _check_arguments(spec, "datamodule", datamodule_cls, {})
    _check_arguments(spec, "trainer", pl.Trainer, RESERVED_TRAINER_ARGS)
    trials = representative_trials(spec)
    _check_objects(spec, trials, "module", module_cls, pl)
    _check_objects(spec, trials, "datamodule", datamodule_cls, pl)
    _check_objects(spec, trials, "trainer", pl.Trainer, pl)  # a logger or profiler as an object
    _check_top_level_objects(spec, trials)
    check_callbacks(spec, pl)
    if spec.hydra_config:
        check_hydra_objects(hydra_project.callbacks(spec.hydra_trial()), "hydra config callbacks")
    if values:
        check_values(spec)
    if hardware is not None:
        check_hardware(spec, hardware)
