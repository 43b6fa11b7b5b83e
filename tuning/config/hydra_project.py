"""A Hydra project as the base of a sweep: its configs tree composed, resolved per trial, read.

``launch --hydra configs/train.yaml [OVERRIDE ...]`` (or ``hydra: {config: ..., overrides: [...]}``
in a sweep file) composes the project's primary config with Hydra's own compose API: defaults
lists, config groups, ``+``/``~`` overrides, ``override /group:``, interpolations. The composed
config, its interpolations kept, goes with the sweep; each trial resolves it anew with its own
values set at their paths, so ``${...}`` that refer to a searched value see the trial's, and
``${hydra:runtime.output_dir}`` is the trial's own directory (``${hydra:runtime.cwd}`` the
directory the trials run in).

The composed config gives (:func:`sections`): ``model`` the LightningModule (its ``_target_``),
``data`` the DataModule, ``trainer`` the Trainer's arguments, ``callbacks`` Lightning callbacks
built in every trial, ``logger`` (W&B's kept), ``seed``, ``optimized_metric``; ``hydra.sweeper``
the search (:mod:`tuning.config.hydra_sweeper`).

A project that follows rootutils' convention (a ``.project-root`` file above its configs) has its
root found, set as ``PROJECT_ROOT`` and put on the path, as its own ``train.py`` would.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tuning.config.hydra_sweeper import sweep_settings
from tuning.config.lightning_config import log_replaced_trainer_keys, merge, section
from tuning.errors import SweepError

logger = logging.getLogger(__name__)

PROJECT_MARKER = ".project-root"  # rootutils' indicator
ROOT_ENV = "PROJECT_ROOT"
TARGET = "_target_"
# Hydra's instantiate keys, never arguments of the class.
HYDRA_KEYS = ("_target_", "_partial_", "_recursive_", "_convert_", "_args_")
# The parts of Hydra's own config a trial's resolution reads (${hydra:...}); the rest (logging,
# launcher, help) stays out of the sweep's record.
HYDRA_NODE_KEYS = ("runtime", "job", "sweeper", "mode", "overrides")
# Sections of the composed config lightsweep reads, resolved for each trial.
READ_SECTIONS = ("model", "data", "trainer", "callbacks", "logger", "seed", "optimized_metric")
# Progress bars draw on a terminal that a trial's worker does not have; the sweep shows its own.
PROGRESS_BARS = ("RichProgressBar", "TQDMProgressBar", "ProgressBar")
INSTALL_HINT = "pip install hydra-core (or pip install 'lightsweep[hydra]')"


def find_project_root(config: Path) -> Path | None:
    """The first directory at or above ``config``'s that holds ``.project-root``, if any."""
    start = config.resolve().parent
    return next((d for d in (start, *start.parents) if (d / PROJECT_MARKER).exists()), None)


def enter_project(root: Path | None) -> None:
    """Sets ``PROJECT_ROOT`` to ``root`` and puts it first on the import path, as the project's
    own entry point does with rootutils (the user's ``PROJECT_ROOT`` wins where set)."""
    if root is None:
        return
    os.environ.setdefault(ROOT_ENV, str(root))
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))


def _register_configs() -> None:
    """Config groups a template project selects that lightsweep stands in for: Hydra's Optuna
    sweeper (whose plugin requires optuna<3 and cannot be installed beside Optuna 5) and
    colorlog's logging configs (which only style Hydra's own console output)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    # The plugin's own defaults (hydra_plugins.hydra_optuna_sweeper.config.OptunaSweeperConf).
    store.store(group="hydra/sweeper", name="optuna", provider="lightsweep", node={
        TARGET: "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper",
        "sampler": {TARGET: "optuna.samplers.TPESampler", "seed": None},
        "direction": "minimize", "storage": None, "study_name": None, "n_trials": 20,
        "n_jobs": 1, "max_failure_rate": 0.0, "search_space": None, "params": None,
        "custom_search_space": None,
    })
    for group in ("hydra/hydra_logging", "hydra/job_logging"):
        if not _plugin_installed("hydra_plugins.hydra_colorlog"):
            store.store(group=group, name="colorlog", provider="lightsweep",
                        node={"version": 1, "disable_existing_loggers": False})


def _plugin_installed(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def compose(config: Path, overrides: list[str]) -> dict[str, Any]:
    """The project's primary ``config`` composed with ``overrides``, interpolations unresolved
    (a plain mapping, with the parts of Hydra's own node a trial reads).

    Raises:
        SweepError: Hydra's own message, prefixed by the file (or the override) it concerns.
    """
    try:
        from hydra import compose as hydra_compose
        from hydra import initialize_config_dir
        from hydra.errors import HydraException
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException
    except ImportError:
        raise SweepError(f"--hydra: composing a Hydra config needs Hydra. Fix: {INSTALL_HINT}"
                         ) from None
    if not config.is_file():
        raise SweepError(f"--hydra: {config} not found. Fix: give the project's primary config, "
                         "e.g. configs/train.yaml")
    _register_configs()
    try:
        with initialize_config_dir(config_dir=str(config.resolve().parent), version_base="1.3",
                                   job_name=config.stem):
            composed = hydra_compose(config_name=config.name, overrides=list(overrides),
                                     return_hydra_config=True)
    except (HydraException, OmegaConfBaseException, ValueError) as error:
        message = " ".join(str(error).split())
        raise SweepError(f"--hydra {config} {' '.join(overrides)}: {message}. Fix: check the "
                         "override (or the config file) it names") from None
    data: dict[str, Any] = OmegaConf.to_container(composed, resolve=False)  # type: ignore[assignment]
    hydra_node = data.pop("hydra", {}) or {}
    data["hydra"] = {k: hydra_node.get(k) for k in HYDRA_NODE_KEYS if k in hydra_node}
    return data


@contextlib.contextmanager
def _hydra_resolver() -> Iterator[None]:
    """``${hydra:KEY}`` read from the config being resolved (its ``hydra`` node), not from the
    HydraConfig singleton, which only a Hydra application's run sets; Hydra's own resolvers are
    put back after."""
    from hydra.core.utils import setup_globals
    from omegaconf import OmegaConf

    setup_globals()  # ${now:...} and Hydra's other resolvers
    OmegaConf.register_new_resolver(
        "hydra", lambda key, _root_: OmegaConf.select(_root_, f"hydra.{key}",
                                                      throw_on_missing=True), replace=True)
    try:
        yield
    finally:
        setup_globals()


def resolve(composed: Mapping[str, Any], values: Mapping[str, Any], output_dir: str,
            cwd: str) -> dict[str, Any]:
    """The sections lightsweep reads (:data:`READ_SECTIONS`) of ``composed``, resolved with
    ``values`` (Hydra paths such as ``model.optimizer.lr``) set first, and Hydra's runtime
    ``output_dir`` and ``cwd`` set to a trial's.

    Raises:
        SweepError: For an interpolation that does not resolve or a mandatory value (``???``)
            left unset, naming its key.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    cfg = OmegaConf.create(copy.deepcopy(dict(composed)))
    for path, value in values.items():
        OmegaConf.update(cfg, path, value, merge=False, force_add=True)
    OmegaConf.update(cfg, "hydra.runtime.output_dir", output_dir, force_add=True)
    OmegaConf.update(cfg, "hydra.runtime.cwd", cwd, force_add=True)
    found: dict[str, Any] = {}
    with _hydra_resolver():
        for key in READ_SECTIONS:
            if key not in cfg:
                continue
            try:
                node = cfg[key]
                found[key] = (OmegaConf.to_container(node, resolve=True, throw_on_missing=True)
                              if OmegaConf.is_config(node) else node)
            except OmegaConfBaseException as error:
                where = getattr(error, "full_key", None) or key
                message = " ".join(str(error).split("\n")[0].split())
                raise SweepError(
                    f"hydra config: {where}: {message}. Fix: give it a value (an override "
                    f"{where}=VALUE, or in the config)") from None
    return found


def arguments(section: Any) -> dict[str, Any]:
    """A class's keyword arguments from its config section (Hydra's own keys left out)."""
    if not isinstance(section, Mapping):
        return {}
    return {k: v for k, v in section.items() if k not in HYDRA_KEYS}


def target(section: Any, key: str) -> str:
    """The class a section's ``_target_`` names.

    Raises:
        SweepError: If the section has none.
    """
    name = section.get(TARGET) if isinstance(section, Mapping) else None
    if not isinstance(name, str):
        raise SweepError(
            f"hydra config: {key} has no _target_, so lightsweep cannot tell its class. Fix: "
            f"select a {key} config ({key}=NAME) whose {key}._target_ names your class")
    return name


def _class_name(obj: Mapping[str, Any]) -> str:
    return str(obj.get(TARGET, "")).rsplit(".", 1)[-1]


def callbacks(resolved: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The project's callbacks to build in every trial, by their config name (progress bars
    left out: a trial's worker has no terminal to draw on)."""
    found = resolved.get("callbacks") or {}
    if not isinstance(found, Mapping):
        raise SweepError("hydra config: callbacks must be a mapping of names to "
                         "{_target_: ...} objects")
    return {name: dict(obj) for name, obj in found.items()
            if isinstance(obj, Mapping) and TARGET in obj and _class_name(obj) not in PROGRESS_BARS}


def left_out_callbacks(resolved: Mapping[str, Any]) -> list[str]:
    """The callbacks :func:`callbacks` leaves out, by name."""
    found = resolved.get("callbacks") or {}
    return [name for name, obj in found.items()
            if isinstance(obj, Mapping) and _class_name(obj) in PROGRESS_BARS]


def wandb_logger(resolved: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """The project's W&B logger's arguments (if it has one), and its other loggers' names."""
    loggers = resolved.get("logger") or {}
    if not isinstance(loggers, Mapping):
        return None, []
    wandb, others = None, []
    for name, obj in loggers.items():
        if not isinstance(obj, Mapping) or TARGET not in obj:
            continue
        if _class_name(obj) == "WandbLogger":
            wandb = arguments(obj)
        else:
            others.append(name)
    return wandb, others


# Where a trial's ${hydra:runtime.output_dir} points while the driver checks the sweep (no trial
# directory exists yet).
CHECK_OUTPUT_DIR = os.path.join(tempfile.gettempdir(), "lightsweep-check")
# The composed config's section for each of lightsweep's routes that a Hydra project has.
SECTIONS = {"module": "model", "datamodule": "data", "trainer": "trainer"}


def hydra_path(key: str) -> str:
    """A space key (``module.optimizer.lr``) as the Hydra config's path (``model.optimizer.lr``)."""
    route, _, path = key.partition(".")
    return f"{SECTIONS.get(route, route)}.{path}"


def shown_key(key: str) -> str:
    """:func:`hydra_path` for a key shown to the user (a conditional branch's too)."""
    route, dot, path = key.partition(".")
    return f"{SECTIONS.get(route, route)}{dot}{path}"


def route_arguments(resolved: Mapping[str, Any], route: str) -> dict[str, Any]:
    """The arguments the resolved config gives ``route`` (module, datamodule, trainer): the
    trainer's without the settings each trial gets from lightsweep."""
    if route not in SECTIONS:
        return {}
    args = arguments(resolved.get(SECTIONS[route]))
    return section({"trainer": args}, "trainer") if route == "trainer" else args


def _relative_root(root: Path | None) -> str | None:
    if root is None:
        return None
    cwd = Path.cwd().resolve()
    return os.path.relpath(root, cwd) if root.is_relative_to(cwd) else str(root)


def project_root(source_root: str | None, base: str | None) -> Path | None:
    """The project's root in this process: a relative root is taken from ``base`` (the launch
    directory, or on a cluster's node the shipped copy of it; the working directory if None)."""
    if source_root is None:
        return None
    return (Path(base or os.getcwd()) / source_root).resolve()


def _base(resolved: Mapping[str, Any], composed: Mapping[str, Any]) -> dict[str, Any]:
    """What the composed config says as sweep-file keys, before the sweep file's own."""
    base: dict[str, Any] = {"module": target(resolved.get("model"), "model"),
                            "datamodule": target(resolved.get("data"), "data")}
    trainer = arguments(resolved.get("trainer"))
    if isinstance(trainer.get("max_epochs"), int) and trainer["max_epochs"] > 0:
        base["scheduler"] = {"max_epochs": trainer["max_epochs"]}
    log_replaced_trainer_keys(trainer, "hydra config")
    seed = resolved.get("seed")
    search: dict[str, Any] = {"seed": seed} if isinstance(seed, int) and not isinstance(
        seed, bool) else {}
    hydra_node = composed.get("hydra") or {}
    found = sweep_settings(hydra_node.get("sweeper"), resolved.get("optimized_metric"))
    found["search"] = {**search, **found.get("search", {})}
    base.update(found)
    wandb, others = wandb_logger(resolved)
    if wandb is not None:
        base["wandb"] = {"enabled": True,
                         **({"project": wandb["project"]} if wandb.get("project") else {})}
    else:
        base["wandb"] = {"enabled": False}
    if others:
        logger.info("hydra config: logger %s not used: each trial logs to the sweep's record "
                    "(and W&B where the config has a WandbLogger)", ", ".join(others))
    dropped = left_out_callbacks(resolved)
    if dropped:
        logger.info("hydra config: callbacks %s left out: a trial's worker draws no progress "
                    "bar (the sweep shows its progress)", ", ".join(dropped))
    return base


def read_hydra_project(data: dict[str, Any], sweep_dir: Path | None,
                       given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A sweep's data with its Hydra project (``hydra:`` in the sweep file, or ``given`` by
    ``--hydra``) composed into it: the composed config is the base, the sweep file's keys (and
    the command line's) lie over it.

    Args:
        data: The sweep file as read (an empty mapping when there is none).
        sweep_dir: The sweep file's directory: its ``hydra.config`` is relative to it.
        given: ``{"config": path relative to the working directory, "overrides": [...]}`` from
            the command line; its config replaces the file's, its overrides follow the file's.

    Raises:
        SweepError: For a config that does not compose or resolve, or a search it cannot run.
    """
    own = data.get("hydra")
    if own is None and not given:
        return data
    if "hydra_config" in data:
        return data  # composed already (a sweep read back from its record)
    if own is not None and (not isinstance(own, Mapping) or not isinstance(own.get("config"), str)):
        raise SweepError(f"hydra: expected {{config: configs/train.yaml, overrides: [...]}}, got "
                         f"{own!r}")
    own = dict(own or {})
    overrides = list(own.get("overrides") or [])
    if not all(isinstance(o, str) for o in overrides):
        raise SweepError(f"hydra.overrides: expected a list of KEY=VALUE strings, got {overrides!r}")
    config = Path(own["config"]) if own else Path()
    if own and not config.is_absolute() and sweep_dir is not None:
        config = sweep_dir / config
    if given:
        config = Path(given["config"]) if given.get("config") else config
        overrides += list(given.get("overrides") or [])
    config = config.resolve()
    root = find_project_root(config)
    enter_project(root)
    composed = compose(config, overrides)
    resolved = resolve(composed, {}, CHECK_OUTPUT_DIR, os.getcwd())
    base = _base(resolved, composed)
    merged: dict[str, Any] = merge(base, {k: v for k, v in data.items() if k != "hydra"})
    for key in merged.get("space") or {}:
        if str(key).split(".")[0] not in (*SECTIONS.values(), *SECTIONS):
            raise SweepError(
                f"space.{key}: a Hydra project's search sets model., data. or trainer. keys "
                "(the module's, the DataModule's and the Trainer's arguments). Fix: search a key "
                "under one of those, or fix this one with an override")
    for key, flag, setting in (("metric", "--metric NAME", "optimized_metric"),
                               ("mode", "--mode max|min", "hydra.sweeper.direction")):
        if key not in merged:
            raise SweepError(f"{key}: the Hydra config sets no {setting}. Fix: pass {flag}, or "
                             f"set {setting} in the config")
    merged["hydra"] = {"config": str(config), "overrides": overrides,
                       "root": _relative_root(root)}
    merged["hydra_config"] = composed
    return merged


def _nested(values: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted paths to values as nested mappings (``{"model.lr": 1}`` -> ``{"model": {"lr": 1}}``)."""
    out: dict[str, Any] = {}
    for path, value in values.items():
        node = out
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def task_overrides(source: Any, choices: Mapping[str, Any]
                   ) -> tuple[dict[str, str], dict[str, Any], set[str]]:
    """What a sweep's overrides (``source.overrides``) set in the project's config, apart from
    its search: group choices (``model=big``; the search's own ``hparams_search=`` left out),
    values (``trainer.max_epochs=2``, ``+trainer.limit_train_batches=40``) by path, and the
    paths of the values the config did not have (added with ``+``). Hydra's own settings
    (``hydra.*``) and deletions (``~key``) are not a trial's values."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    groups: dict[str, str] = {}
    values: dict[str, Any] = {}
    added: set[str] = set()
    for text in source.overrides:
        override = parser.parse_override(text)
        key = override.key_or_group
        if key.startswith("hydra.") or key == "hparams_search" or override.is_delete():
            continue
        if key in choices:
            groups[key] = str(override.value())
        else:
            values[key] = override.value()
            if override.is_add() or override.is_force_add():
                added.add(key)
    return groups, values, added


def experiment_config(groups: Mapping[str, str], values: Mapping[str, Any]) -> dict[str, Any]:
    """A Hydra experiment config (``# @package _global_``, composed as ``experiment=NAME``):
    the group choices as ``override /group: option`` and the values by path."""
    defaults = [{f"override /{group}": option} for group, option in groups.items()]
    return {**({"defaults": defaults} if defaults else {}), **_nested(values)}


def override_text(value: Any) -> str:
    """A value in Hydra's override grammar."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        plain = value and all(c.isalnum() or c in "_-./:" for c in value) and not value[0].isdigit()
        return value if plain else "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{override_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(override_text(v) for v in value) + "]"
    return override_text(str(value))
