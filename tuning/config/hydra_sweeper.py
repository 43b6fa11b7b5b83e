"""A Hydra project's own search, as its sweeper config writes it, read as the sweep's.

Hydra's Optuna sweeper (``hydra/sweeper: optuna``, the Lightning-Hydra template's
``hparams_search`` configs) names its search space in Hydra's override grammar::

    hydra:
      sweeper:
        direction: maximize
        n_trials: 20
        sampler: {_target_: optuna.samplers.TPESampler, seed: 1234, n_startup_trials: 10}
        params:
          model.optimizer.lr: tag(log, interval(0.0001, 0.1))   # -> {loguniform: [...]}
          model.optimizer.weight_decay: interval(0.0, 0.001)    # -> {uniform: [...]}
          model.net.depth: int(interval(2, 4))                  # -> {int: [2, 4]}
          data.batch_size: choice(32, 64, 128)                  # -> {choice: [...]}
          model.net.width: range(16, 80, 16)                    # -> 16, 32, 48, 64
          trainer.gradient_clip_val: 0.5                        # fixed

Each expression is parsed by Hydra's own override parser and read as the values Hydra gives it
(``range`` excludes its stop, as Hydra's grammar does). The sweeper's older ``search_space``
form (``type: float, low, high, log``) and Hydra's basic sweeper (``params: {a: 1,2,3}``, a
choice) are read too. ``n_trials``, ``direction``, the sampler (its class, seed and other
arguments) and the config's ``optimized_metric`` give the trial count, mode, sampler and metric.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from tuning.errors import SweepError

logger = logging.getLogger(__name__)

# Optuna's samplers that lightsweep runs, by the class a sweeper config names.
SAMPLERS = {"TPESampler": "tpe", "RandomSampler": "random", "NSGAIISampler": "nsga2"}
DIRECTIONS = {"maximize": "max", "minimize": "min"}
# Hydra's sweeper settings that lightsweep has its own way for: said once, in a line.
NOT_USED = {
    "storage": "the study is kept in the experiment (study.json, read by optuna-dashboard)",
    "study_name": "the study is the experiment's",
    "n_jobs": "trials at once follow resources (resources.max_concurrent)",
    "max_failure_rate": "a failed trial fails alone (failures.fail_fast stops the sweep)",
}
PRIMITIVES = (str, int, float, bool, type(None))


def _expression(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_param(key: str, expression: Any) -> Any:
    """One ``params`` entry as a ``space`` entry: a distribution (``{loguniform: [a, b]}``,
    ...) or a fixed value.

    Raises:
        SweepError: For an expression Hydra cannot parse, or one lightsweep cannot search,
            naming the key and the expression.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
    from hydra.errors import HydraException

    where = f"hydra.sweeper.params.{key}"
    text = _expression(expression)
    try:
        override = OverridesParser.create().parse_override(f"{key}={text}")
    except HydraException as error:
        message = " ".join(str(error).split())
        raise SweepError(f"{where}: {text!r} is not Hydra's override grammar ({message}). Fix: "
                         "write interval(a, b), int(interval(a, b)), tag(log, interval(a, b)), "
                         "choice(a, b, ...), range(start, stop[, step]) or a value") from None
    if not override.is_sweep_override():
        return override.value()
    value = override.value()
    if getattr(value, "shuffle", False):
        raise SweepError(f"{where}: {text!r} shuffles; the search decides the order itself. "
                         "Fix: leave out shuffle()")
    if isinstance(value, IntervalSweep):
        low, high = value.start, value.end
        if isinstance(low, int) and isinstance(high, int):
            return {"int": [low, high], **({"log": True} if "log" in value.tags else {})}
        return {"loguniform" if "log" in value.tags else "uniform": [low, high]}
    if isinstance(value, RangeSweep):
        choices = list(override.sweep_iterator())
        if choices and all(isinstance(v, int) for v in choices) and isinstance(value.step, int):
            if len(choices) == 1:
                return choices[0]
            return {"int": [choices[0], choices[-1]], "step": value.step}
        return {"choice": choices}
    if isinstance(value, ChoiceSweep):
        choices = list(override.sweep_iterator())
        odd = [c for c in choices if not isinstance(c, PRIMITIVES)]
        if odd:
            raise SweepError(f"{where}: {text!r} chooses among {odd[0]!r}, which is not a "
                             "number, string, bool or null. Fix: choose among plain values")
        return {"choice": choices}
    raise SweepError(f"{where}: {text!r} is a sweep lightsweep does not search. Fix: use "
                     "interval, int(interval), tag(log, interval), choice or range")


def _old_form(key: str, entry: Any) -> Any:
    """The sweeper's earlier ``search_space`` entry (``type: float, low, high, log, step``)."""
    where = f"hydra.sweeper.search_space.{key}"
    if not isinstance(entry, Mapping) or "type" not in entry:
        raise SweepError(f"{where}: expected {{type: float|int|categorical, ...}}, got {entry!r}")
    kind = entry["type"]
    if kind == "categorical":
        return {"choice": list(entry.get("choices") or [])}
    if kind in ("float", "int"):
        bounds = [entry.get("low"), entry.get("high")]
        if kind == "int":
            return {"int": bounds, **({"step": entry["step"]} if entry.get("step") else {}),
                    **({"log": True} if entry.get("log") else {})}
        return {"loguniform" if entry.get("log") else "uniform": bounds}
    raise SweepError(f"{where}: type {kind!r} is none of float, int, categorical")


def _sampler(sampler: Any) -> dict[str, Any]:
    if sampler is None:
        return {}
    if not isinstance(sampler, Mapping) or not isinstance(sampler.get("_target_"), str):
        raise SweepError(f"hydra.sweeper.sampler: expected {{_target_: optuna.samplers.NAME, "
                         f"...}}, got {sampler!r}")
    name = sampler["_target_"].rsplit(".", 1)[-1]
    if name not in SAMPLERS:
        raise SweepError(f"hydra.sweeper.sampler._target_: {sampler['_target_']} is not a "
                         f"sampler lightsweep runs. Fix: use optuna.samplers."
                         f"{', optuna.samplers.'.join(SAMPLERS)}")
    found: dict[str, Any] = {"sampler": SAMPLERS[name]}
    args = {k: v for k, v in sampler.items() if not (k.startswith("_") and k.endswith("_"))}
    if args.get("seed") is not None:
        found["seed"] = args["seed"]
    args.pop("seed", None)
    if args:
        found["sampler_args"] = args
    return found


def _direction(sweeper: Mapping[str, Any]) -> str | list[str] | None:
    given = sweeper.get("direction", sweeper.get("directions"))
    if given is None:
        return None
    listed = given if isinstance(given, list) else [given]
    bad = [d for d in listed if d not in DIRECTIONS]
    if bad:
        raise SweepError(f"hydra.sweeper.direction: {bad[0]!r} is neither maximize nor minimize")
    modes = [DIRECTIONS[d] for d in listed]
    return modes if isinstance(given, list) and len(modes) > 1 else modes[0]


def sweep_settings(sweeper: Mapping[str, Any] | None, optimized_metric: Any) -> dict[str, Any]:
    """What a sweeper config says, as sweep-file keys: ``space``, ``search``, ``mode``,
    ``metric``.

    Raises:
        SweepError: Naming the sweeper's key and the fix.
    """
    found: dict[str, Any] = {}
    if optimized_metric is not None:
        found["metric"] = optimized_metric
    if not sweeper:
        return found
    space: dict[str, Any] = {}
    for key, entry in (sweeper.get("search_space") or {}).items():
        space[key] = _old_form(key, entry)
    params = sweeper.get("params") or {}
    if not isinstance(params, Mapping):
        raise SweepError(f"hydra.sweeper.params: expected a mapping of keys to expressions, "
                         f"got {params!r}")
    for key, expression in params.items():
        space[str(key)] = parse_param(str(key), expression)
    if space:
        found["space"] = space
    search: dict[str, Any] = _sampler(sweeper.get("sampler"))
    trials = sweeper.get("n_trials")
    if trials is not None:
        if isinstance(trials, bool) or not isinstance(trials, int) or trials <= 0:
            raise SweepError(f"hydra.sweeper.n_trials: expected a positive integer, got {trials!r}")
        search["num_samples"] = trials
    if search:
        found["search"] = search
    mode = _direction(sweeper)
    if mode is not None:
        found["mode"] = mode
    if isinstance(mode, list) and not isinstance(optimized_metric, list):
        raise SweepError(f"hydra.sweeper.direction: {len(mode)} directions for one metric. Fix: "
                         "one direction, or optimized_metric as a list of as many metrics")
    unused = [k for k in NOT_USED if sweeper.get(k) not in (None, 1, 0.0)]
    for key in unused:
        logger.info("hydra.sweeper.%s not used: %s", key, NOT_USED[key])
    return found
