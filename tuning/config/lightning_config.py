"""A LightningCLI config file as a sweep's base, and a trial written back as one.

``config: path/to/config.yaml`` in a sweep file (or ``launch --config``, repeatable; later files
win, as LightningCLI merges them) reads the config a LightningCLI project already has:

- ``model`` and ``data``: the LightningModule's and DataModule's arguments; in subclass mode
  (``model: {class_path: ..., init_args: ...}``) their classes too, so ``module:`` and
  ``datamodule:`` may be left out of the sweep file;
- ``trainer``: the Trainer's arguments; ``max_epochs`` becomes ``scheduler.max_epochs`` unless the
  sweep file sets one, ``callbacks`` join the sweep's, and the settings each trial gets from
  lightsweep (:data:`OWNED_TRAINER_KEYS`) are replaced, with one line saying so;
- ``seed_everything``: the sweep's seed, unless the sweep file sets ``search.seed``;
- ``optimizer`` and ``lr_scheduler``: applied as LightningCLI applies them (they replace the
  module's ``configure_optimizers``).

The sweep file's own ``module_args``, ``datamodule_args`` and ``trainer_args`` are laid over the
config, and ``space`` over both.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tuning.config.objects import CLASS_PATH, INIT_ARGS, is_object
from tuning.config.yaml_files import read_yaml
from tuning.errors import SweepError

logger = logging.getLogger(__name__)

# LightningCLI's fit: its sections, and Trainer.fit's own arguments.
CONFIG_KEYS = ("seed_everything", "trainer", "model", "data", "optimizer", "lr_scheduler",
               "ckpt_path", "weights_only")
# Trainer settings that each trial gets from lightsweep, and from where.
OWNED_TRAINER_KEYS = {
    "accelerator": "resources.gpus_per_worker",
    "devices": "resources.workers_per_trial",
    "num_nodes": "resources.workers_per_trial",
    "strategy": "Ray's DDP across a trial's workers",
    "plugins": "Ray's cluster environment",
    "logger": "a W&B run per trial (wandb:)",
}
# Trainer settings the sweep holds elsewhere.
MOVED_TRAINER_KEYS = ("max_epochs", "callbacks")
# Where LightningCLI finds a bare optimizer or scheduler name.
_SHORT_NAMES = {"optimizer": "torch.optim", "lr_scheduler": "torch.optim.lr_scheduler"}
# The config's section for each of lightsweep's routes.
ROUTE_SECTIONS = {"module": "model", "datamodule": "data", "trainer": "trainer",
                   "optimizer": "optimizer", "lr_scheduler": "lr_scheduler"}


def merge(base: Any, override: Any) -> Any:
    """``override`` laid over ``base``, mappings merged key by key, as jsonargparse merges
    config files: an object whose ``class_path`` changes takes the new object whole."""
    if not (isinstance(base, Mapping) and isinstance(override, Mapping)):
        return copy.deepcopy(override)
    if CLASS_PATH in override and override[CLASS_PATH] != base.get(CLASS_PATH, override[CLASS_PATH]):
        return copy.deepcopy(dict(override))
    merged = dict(copy.deepcopy(base))
    for key, value in override.items():
        merged[key] = merge(merged[key], value) if key in merged else copy.deepcopy(value)
    return merged


def read_configs(paths: list[Path]) -> dict[str, Any]:
    """The LightningCLI config files ``paths``, merged in order.

    Raises:
        SweepError: For a missing file, broken YAML, or a key LightningCLI would refuse.
    """
    merged: dict[str, Any] = {}
    for path in paths:
        data = read_yaml(path, "LightningCLI config",
                         "give the path of the project's config.yaml (relative to the sweep file)")
        if data is None:
            continue
        if not isinstance(data, dict):
            raise SweepError(f"config: {path} is not a mapping of LightningCLI's sections "
                             f"({', '.join(CONFIG_KEYS)})")
        unknown = [k for k in data if k not in CONFIG_KEYS]
        if unknown:
            raise SweepError(
                f"config: {path} has {', '.join(map(repr, unknown))}, which LightningCLI's fit "
                f"does not take. Fix: keep to {', '.join(CONFIG_KEYS)}"
            )
        for key in ("model", "data", "trainer"):
            if data.get(key) is not None and not isinstance(data[key], dict):
                raise SweepError(f"config: {path}: {key} must be a mapping, got {data[key]!r}")
        merged = merge(merged, data)
    return merged


def _object(value: Any, route: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        value = {CLASS_PATH: value}  # a bare name too (SGD), unlike objects.as_object
    found: dict[str, Any] = dict(value)
    name = found.get(CLASS_PATH)
    if isinstance(name, str) and "." not in name and route in _SHORT_NAMES:
        found[CLASS_PATH] = f"{_SHORT_NAMES[route]}.{name}"
    return found


def section(config: Mapping[str, Any], route: str) -> dict[str, Any]:
    """The arguments the config gives to ``route`` (module, datamodule, trainer, optimizer,
    lr_scheduler)."""
    value = config.get(ROUTE_SECTIONS[route])
    if route in ("optimizer", "lr_scheduler"):
        return _object(value, route)
    value = dict(value or {})
    if route == "trainer":
        # None is LightningCLI's "the Trainer's default" (a printed config lists every key so):
        # left out, so that lightsweep's own defaults for trials (no progress bar) hold.
        return {k: v for k, v in value.items() if v is not None
                and k not in OWNED_TRAINER_KEYS and k not in MOVED_TRAINER_KEYS}
    if CLASS_PATH in value:
        return dict(value.get(INIT_ARGS) or {})
    return value


def _class_from_config(data: dict[str, Any], field: str, value: Any, where: str) -> None:
    if not is_object(value):
        return
    named = str(value[CLASS_PATH])
    if field not in data:
        data[field] = named
    elif data[field].replace(":", ".") != named:
        raise SweepError(
            f"{field}: {data[field]} differs from the config's {where}.class_path ({named}), "
            f"whose init_args are for that class. Fix: remove {field} from the sweep file, or "
            "the class_path from the config"
        )


def _callbacks(trainer: Mapping[str, Any]) -> list[dict[str, Any]]:
    entries = trainer.get("callbacks") or []
    if isinstance(entries, Mapping):
        entries = [entries]
    callbacks = []
    for i, entry in enumerate(entries):
        if not is_object(entry) or CLASS_PATH not in entry:
            raise SweepError(f"config: trainer.callbacks[{i}] is not a class_path object. "
                             "Fix: write it as {class_path: ..., init_args: {...}}")
        callbacks.append({str(entry[CLASS_PATH]): dict(entry.get(INIT_ARGS) or {})})
    return callbacks


def _max_epochs(data: dict[str, Any], config_trainer: Mapping[str, Any]) -> None:
    """One ``max_epochs`` for the scheduler: the sweep file's ``scheduler.max_epochs``, else its
    ``trainer_args.max_epochs``, else the config's ``trainer.max_epochs``."""
    scheduler = dict(data.get("scheduler") or {})
    trainer_args = dict(data.get("trainer_args") or {})
    chosen = scheduler.get("max_epochs")
    if "max_epochs" in trainer_args:
        given = trainer_args.pop("max_epochs")
        if chosen is not None and chosen != given:
            raise SweepError(
                f"trainer_args.max_epochs ({given}) differs from scheduler.max_epochs ({chosen}). "
                "Fix: remove trainer_args.max_epochs; the scheduler's is the trials' length"
            )
        chosen = given
        data["trainer_args"] = trainer_args
    from_config = config_trainer.get("max_epochs")
    if chosen is None and isinstance(from_config, int) and from_config > 0:
        chosen = from_config
    if chosen is not None:
        data["scheduler"] = {**scheduler, "max_epochs": chosen}


def resolve_lightning_config(data: dict[str, Any], sweep_dir: Path,
                             extra_configs: list[str] | None = None) -> dict[str, Any]:
    """A sweep file's data with its LightningCLI config (if any) read into it.

    Args:
        data: The sweep file as read.
        sweep_dir: The sweep file's directory: its ``config:`` paths are relative to it.
        extra_configs: More config files (``--config``), relative to the working directory;
            they win over the sweep file's.

    Raises:
        SweepError: For a config file that cannot be read, or that contradicts the sweep file.
    """
    data = dict(data)
    own = data.get("config") or []
    own = [own] if isinstance(own, str) else own
    if not isinstance(own, list) or not all(isinstance(p, str) for p in own):
        raise SweepError(f"config: expected a path or a list of paths, got {own!r}")
    paths = [sweep_dir / p for p in own] + [Path(p) for p in extra_configs or []]
    config: dict[str, Any] = {}
    if paths and "lightning_config" not in data:
        config = read_configs(paths)
        data["config"] = [str(p) for p in paths]
        data["lightning_config"] = config
    trainer = dict(config.get("trainer") or {})
    _max_epochs(data, trainer)
    if not config:
        return data
    _class_from_config(data, "module", config.get("model"), "model")
    _class_from_config(data, "datamodule", config.get("data"), "data")
    seed = config.get("seed_everything")
    if isinstance(seed, int) and not isinstance(seed, bool):
        data["search"] = {"seed": seed, **(data.get("search") or {})}
    callbacks = _callbacks(trainer)
    if callbacks:
        data["callbacks"] = [*callbacks, *(data.get("callbacks") or [])]
    if config.get("ckpt_path") is not None:
        logger.info("config: ckpt_path not used: each trial trains from its own start (and "
                    "resumes from its own checkpoints)")
    log_replaced_trainer_keys(trainer, "config")
    return data


def log_replaced_trainer_keys(trainer: Mapping[str, Any], source: str) -> None:
    """Says in one line which of a base config's trainer settings each trial gets from
    lightsweep instead."""
    replaced = [k for k in OWNED_TRAINER_KEYS if trainer.get(k) is not None]
    if replaced:
        logger.info("%s: trainer %s set by lightsweep for each trial (%s)", source,
                    ", ".join(replaced),
                    "; ".join(f"{k}: {OWNED_TRAINER_KEYS[k]}" for k in replaced))


def best_config(config: Mapping[str, Any], module: str, datamodule: str,
                args: Mapping[str, dict[str, Any]], max_epochs: int, seed: int) -> dict[str, Any]:
    """A LightningCLI config that trains one trial: the sweep's base ``config`` with the
    trial's arguments ``args`` (by route) in place.

    The model and data keep the base's form: ``class_path``/``init_args`` (subclass mode) where
    the base has it or there is no base, plain arguments where the base has those.
    """
    out = copy.deepcopy(dict(config))
    for route, key, cls in (("module", "model", module), ("datamodule", "data", datamodule)):
        base = config.get(key)
        if base is None or is_object(base):
            out[key] = {CLASS_PATH: cls.replace(":", "."), INIT_ARGS: args[route]}
        else:
            out[key] = args[route]
    trainer = dict(out.get("trainer") or {})
    trainer.update(args["trainer"])
    trainer["max_epochs"] = max_epochs
    out["trainer"] = trainer
    out["seed_everything"] = seed
    for route in ("optimizer", "lr_scheduler"):
        if args.get(route):
            out[route] = args[route]
    return out
