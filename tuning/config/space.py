"""The search-space syntax of sweep files, and how Optuna samples it.

Each key of a sweep file's ``space`` section is routed by its prefix to the LightningModule
(``module.``, or LightningCLI's ``model.``), the LightningDataModule (``datamodule.``, or
``data.``), the Lightning Trainer (``trainer.``), or LightningCLI's top-level ``optimizer.`` and
``lr_scheduler.``. The rest of the key is a dotted path, as LightningCLI's command line writes it,
that may run into objects (``module.net.init_args.hidden``). A value is a distribution::

    module.lr: {loguniform: [1.0e-4, 1.0e-1]}
    module.dropout: {uniform: [0.0, 0.5]}
    module.width: {int: [16, 128], step: 16}     # inclusive bounds
    module.hidden: {int: [8, 512], log: true}     # integers, uniform in their logarithm
    datamodule.batch_size: {choice: [32, 64, 128]}

or a bare value, which is fixed. A ``choice`` among objects is conditional: each branch may search
arguments of its own, which exist only in the trials that take that branch::

    module.optimizer:
      choice:
        - {class_path: torch.optim.AdamW, init_args: {lr: {loguniform: [1e-4, 1e-2]}}}
        - {class_path: torch.optim.SGD, init_args: {lr: {loguniform: [1e-3, 1e-1]},
                                                     momentum: {uniform: [0.8, 0.99]}}}

A trial's config then holds ``module.optimizer: SGD`` (the branch's label, its class's name) and
``module.optimizer[SGD].init_args.lr``: Optuna sees one parameter per branch, so TPE never mixes
one optimizer's learning rates with another's.

Sampling is Optuna's define-by-run (:func:`sample`): the same suggestions, in the same order, as
Ray Tune's conversion of a flat space, so a flat space proposes exactly what it did before.
"""

from __future__ import annotations

import abc
import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

from typing_extensions import override

from tuning.config.objects import class_name, is_object, set_path
from tuning.errors import SweepError

ROUTES = ("module", "datamodule", "trainer", "optimizer", "lr_scheduler")
# LightningCLI's names for the first two.
ROUTE_ALIASES = {"model": "module", "data": "datamodule"}
DISTRIBUTIONS = ("loguniform", "uniform", "int", "choice")
OPTIONS = ("step", "log")  # of int


def _tune() -> ModuleType:
    # Ray Tune on first use: the check of the user's classes reads sweep files in a process of
    # its own, which needs no Ray (1.2 s of imports).
    from ray import tune

    return tune


class Distribution(abc.ABC):
    """One searched parameter's distribution."""

    name: ClassVar[str]

    @abc.abstractmethod
    def to_tune(self) -> Any:
        """Returns the Ray Tune domain (which OptunaSearch converts for Optuna)."""

    @abc.abstractmethod
    def suggest(self, trial: Any, name: str) -> None:
        """Asks an Optuna trial for this parameter (and, for a conditional choice, those of the
        branch it takes) under ``name``."""

    def optuna(self) -> Any:
        """Optuna's distribution of the value this parameter's ``name`` holds in a config."""
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch.convert_search_space({"x": self.to_tune()})["x"]

    def flat(self, name: str) -> dict[str, Distribution]:
        """Every config key this parameter may set, with its distribution."""
        return {name: self}

    def value(self, config: Mapping[str, Any], name: str) -> Any:
        """The argument's value in a trial whose config is ``config``."""
        return config[name]

    def finite_values(self) -> list[Any] | None:
        """Every value the distribution can produce, when they are few enough to check each."""
        return None


def _number(key: str, value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SweepError(f"space.{key}: {what} must be a number, got {value!r}")
    return float(value)


def _bounds(key: str, spec: Any, dist: str) -> tuple[float, float]:
    if not isinstance(spec, list | tuple) or len(spec) != 2:
        raise SweepError(
            f"space.{key}: {dist} takes [low, high], got {spec!r}. "
            f"Fix: write {{{dist}: [low, high]}}"
        )
    low, high = (_number(key, v, f"{dist} bound") for v in spec)
    if not low < high:
        raise SweepError(
            f"space.{key}: {dist} needs low < high, got [{spec[0]}, {spec[1]}]. "
            "Fix: swap the bounds, or use a bare value to fix the parameter"
        )
    return low, high


@dataclass(frozen=True)
class LogUniform(Distribution):
    low: float
    high: float
    name = "loguniform"

    @override
    def to_tune(self) -> Any:
        return _tune().loguniform(self.low, self.high)

    @override
    def suggest(self, trial: Any, name: str) -> None:
        trial.suggest_float(name, self.low, self.high, log=True)


@dataclass(frozen=True)
class Uniform(Distribution):
    low: float
    high: float
    name = "uniform"

    @override
    def to_tune(self) -> Any:
        return _tune().uniform(self.low, self.high)

    @override
    def suggest(self, trial: Any, name: str) -> None:
        trial.suggest_float(name, self.low, self.high)


@dataclass(frozen=True)
class IntRange(Distribution):
    """Integers from ``low`` to ``high`` inclusive, every ``step`` (or, with ``log``, drawn
    uniformly in their logarithm)."""

    low: int
    high: int
    step: int = 1
    log: bool = False
    name = "int"

    @override
    def to_tune(self) -> Any:
        if self.log:  # Tune's lograndint excludes its upper bound
            return _tune().lograndint(self.low, self.high + 1)
        # Tune's qrandint is inclusive of its upper bound, as sweep files promise.
        return _tune().qrandint(self.low, self.high, self.step)

    @override
    def suggest(self, trial: Any, name: str) -> None:
        trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log)

    @override
    def optuna(self) -> Any:
        if not self.log:
            return super().optuna()
        import optuna

        return optuna.distributions.IntDistribution(self.low, self.high, log=True)

    @override
    def finite_values(self) -> list[Any] | None:
        return list(range(self.low, self.high + 1, self.step))


@dataclass(frozen=True)
class Choice(Distribution):
    values: tuple[Any, ...]
    name = "choice"

    @override
    def to_tune(self) -> Any:
        return _tune().choice(list(self.values))

    @override
    def suggest(self, trial: Any, name: str) -> None:
        trial.suggest_categorical(name, list(self.values))

    @override
    def finite_values(self) -> list[Any] | None:
        return list(self.values)


@dataclass(frozen=True)
class Branch:
    """One object of a conditional choice: its label, the object with its searched arguments
    left out, and those arguments by their path inside the object."""

    label: str
    template: dict[str, Any]
    searched: tuple[tuple[str, Distribution], ...]

    def key(self, name: str, path: str) -> str:
        return f"{name}[{self.label}].{path}"


@dataclass(frozen=True)
class ObjectChoice(Distribution):
    """A choice among objects, each with arguments of its own searched (conditional)."""

    branches: tuple[Branch, ...]
    name = "choice"

    @property
    def labels(self) -> list[str]:
        return [b.label for b in self.branches]

    @override
    def to_tune(self) -> Any:
        return _tune().choice(self.labels)

    @override
    def suggest(self, trial: Any, name: str) -> None:
        label = trial.suggest_categorical(name, self.labels)
        branch = self.branches[self.labels.index(label)]
        for path, dist in branch.searched:
            dist.suggest(trial, branch.key(name, path))

    @override
    def flat(self, name: str) -> dict[str, Distribution]:
        keys: dict[str, Distribution] = {name: Choice(tuple(self.labels))}
        for branch in self.branches:
            for path, dist in branch.searched:
                keys.update(dist.flat(branch.key(name, path)))
        return keys

    @override
    def value(self, config: Mapping[str, Any], name: str) -> Any:
        branch = self.branches[self.labels.index(config[name])]
        obj = copy.deepcopy(branch.template)
        for path, dist in branch.searched:
            set_path(obj, path, dist.value(config, branch.key(name, path)), f"space.{name}")
        return obj


def _is_distribution(value: Any) -> bool:
    return isinstance(value, Mapping) and any(k in DISTRIBUTIONS for k in value) and all(
        k in (*DISTRIBUTIONS, *OPTIONS) for k in value)


def _contains_distribution(value: Any) -> bool:
    if _is_distribution(value):
        return True
    if isinstance(value, Mapping):
        return any(_contains_distribution(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_contains_distribution(v) for v in value)
    return False


def _labels(objects: list[Mapping[str, Any]]) -> list[str]:
    short = [class_name(o).rsplit(".", 1)[-1] for o in objects]
    if len(set(short)) == len(short):
        return short
    return [f"{name}#{i}" for i, name in enumerate(short)]


def _split_template(key: str, obj: Mapping[str, Any], prefix: str = ""
                    ) -> tuple[dict[str, Any], list[tuple[str, Distribution]]]:
    template: dict[str, Any] = {}
    searched: list[tuple[str, Distribution]] = []
    for name, value in obj.items():
        path = f"{prefix}{name}"
        if _is_distribution(value):
            dist = parse_distribution(f"{key}.{path}", value)
            assert dist is not None
            searched.append((path, dist))
        elif isinstance(value, Mapping):
            template[name], inner = _split_template(key, value, f"{path}.")
            searched += inner
        else:
            template[name] = copy.deepcopy(value)
    return template, searched


def _parse_choice(key: str, values: list[Any]) -> Distribution:
    objects = [is_object(v) for v in values]
    if not any(objects):
        if _contains_distribution(values):
            raise SweepError(
                f"space.{key}: a choice whose values search arguments of their own is a choice "
                "among objects, and these are not objects. Fix: write each branch as "
                "{class_path: pkg.Class, init_args: {...}} or {_target_: pkg.Class, ...}"
            )
        return Choice(tuple(values))
    if not all(objects):
        bad = [i for i, is_obj in enumerate(objects) if not is_obj]
        raise SweepError(
            f"space.{key}: choice branch {bad[0]} ({values[bad[0]]!r}) is not an object, and the "
            "others are. Fix: write every branch as {class_path: pkg.Class, init_args: {...}} "
            "(or {_target_: pkg.Class, ...})"
        )
    labels = _labels(values)
    branches = []
    for label, obj in zip(labels, values, strict=True):
        template, searched = _split_template(f"{key}[{label}]", obj)
        branches.append(Branch(label, template, tuple(searched)))
    return ObjectChoice(tuple(branches))


def _parse_int(key: str, spec: Any, step: Any, log: Any) -> IntRange:
    low, high = _bounds(key, spec, "int")
    if not isinstance(log, bool):
        raise SweepError(f"space.{key}: log takes true or false, got {log!r}")
    if log and (low < 1 or step not in (None, 1)):
        raise SweepError(f"space.{key}: a log-scaled int needs low >= 1 and no step, got "
                         f"{spec!r} step {step!r}. Fix: raise low, or leave out step or log")
    step = 1 if step is None else step
    if not all(float(v).is_integer() for v in (low, high)) or isinstance(step, bool) or not (
        isinstance(step, int) and step > 0
    ):
        raise SweepError(
            f"space.{key}: int takes integer bounds and a positive integer step, "
            f"got {spec!r} step {step!r}"
        )
    if (int(high) - int(low)) % step:
        raise SweepError(
            f"space.{key}: int range [{int(low)}, {int(high)}] is not a whole number of steps of "
            f"{step}. Fix: make high - low a multiple of step"
        )
    return IntRange(int(low), int(high), step, log)


def parse_distribution(key: str, value: Any) -> Distribution | None:
    """Parses one ``space`` entry; returns None for a bare (fixed) value.

    Raises:
        SweepError: For an unknown distribution or bad bounds, naming the key and the fix.
    """
    if not isinstance(value, Mapping):
        return None
    if is_object(value):
        return None  # an object, fixed
    kinds = [k for k in value if k not in OPTIONS]
    known = DISTRIBUTIONS
    if len(kinds) != 1 or kinds[0] not in known:
        raise SweepError(
            f"space.{key}: unknown distribution {value!r}. "
            f"Fix: use one of {', '.join(f'{{{k}: ...}}' for k in known)}, or a bare value"
        )
    kind = kinds[0]
    spec = value[kind]
    for option in OPTIONS:
        if option in value and kind != "int":
            raise SweepError(f"space.{key}: {option!r} only goes with int, not {kind}")
    if kind == "choice":
        if not isinstance(spec, list | tuple) or not spec:
            raise SweepError(
                f"space.{key}: choice needs a non-empty list, got {spec!r}. "
                "Fix: {choice: [a, b, ...]}"
            )
        return _parse_choice(key, list(spec))
    if kind == "int":
        return _parse_int(key, spec, value.get("step"), value.get("log", False))
    low, high = _bounds(key, spec, kind)
    if kind == "loguniform":
        if low <= 0:
            raise SweepError(
                f"space.{key}: loguniform needs positive bounds, got [{spec[0]}, {spec[1]}]. "
                "Fix: use a positive low bound, or uniform for ranges that include zero"
            )
        return LogUniform(low, high)
    return Uniform(low, high)


def split_key(key: str) -> tuple[str, str]:
    """Splits ``"module.net.init_args.hidden"`` into ``("module", "net.init_args.hidden")``;
    LightningCLI's ``model.``/``data.`` are read as ``module.``/``datamodule.``.

    Raises:
        SweepError: If the prefix is not one of :data:`ROUTES`, or the path is no dotted path.
    """
    route, dot, path = key.partition(".")
    route = ROUTE_ALIASES.get(route, route)
    if not dot or route not in ROUTES or not all(p.isidentifier() for p in path.split(".")):
        raise SweepError(
            f"space.{key}: unknown prefix in {key!r}. Fix: start the key with one of "
            f"{', '.join(r + '.' for r in (*ROUTES, *ROUTE_ALIASES))} followed by the argument's "
            "name or dotted path (module.lr, module.net.init_args.hidden)"
        )
    return route, path


def canonical_key(key: str) -> str:
    """``key`` with LightningCLI's route names replaced by lightsweep's (``model.lr`` ->
    ``module.lr``)."""
    route, path = split_key(key)
    return f"{route}.{path}"


@dataclass(frozen=True)
class SearchSpace:
    """A parsed ``space`` section: searched distributions and fixed values, by full key."""

    distributions: dict[str, Distribution]
    fixed: dict[str, Any]

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> SearchSpace:
        distributions: dict[str, Distribution] = {}
        fixed: dict[str, Any] = {}
        for raw_key, value in raw.items():
            key = canonical_key(raw_key)
            if key in distributions or key in fixed:
                raise SweepError(f"space.{raw_key}: {key} is given twice. Fix: keep one")
            dist = parse_distribution(key, value)
            if dist is None:
                fixed[key] = value
            else:
                distributions[key] = dist
        return cls(distributions, fixed)

    @property
    def searched(self) -> dict[str, Distribution]:
        """Every config key a trial may hold (a conditional choice's branch arguments too),
        with its distribution."""
        keys: dict[str, Distribution] = {}
        for key, dist in self.distributions.items():
            keys.update(dist.flat(key))
        return keys

    @property
    def is_conditional(self) -> bool:
        return any(isinstance(d, ObjectChoice) for d in self.distributions.values())

    def to_tune(self) -> dict[str, Any]:
        """A Ray Tune ``param_space`` of the top-level searched keys (a conditional choice
        as a choice among its labels)."""
        return {key: dist.to_tune() for key, dist in self.distributions.items()}

    def optuna_distributions(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Optuna's distribution of every searched key that ``config`` (a trial's) holds."""
        return {key: dist.optuna() for key, dist in self.searched.items() if key in config}

    def suggest(self, trial: Any) -> None:
        """Asks an Optuna trial for every searched key, in the sweep file's order."""
        for key, dist in self.distributions.items():
            dist.suggest(trial, key)

    def values(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Every key's value in the trial whose config is ``config`` (conditional choices
        built into their objects)."""
        values = dict(self.fixed)
        for key, dist in self.distributions.items():
            values[key] = dist.value(config, key)
        return values

    def keys_for(self, route: str) -> dict[str, str]:
        """Maps the path inside ``route`` to the full key, for every searched or fixed key."""
        return {
            split_key(k)[1]: k for k in (*self.distributions, *self.fixed)
            if split_key(k)[0] == route
        }

    def possible_values(self, key: str) -> list[Any] | None:
        """All values ``key`` can take, or None when it is continuous (or absent)."""
        if key in self.fixed:
            return [self.fixed[key]]
        dist = self.distributions.get(key)
        if dist is None or isinstance(dist, ObjectChoice):
            return None
        return dist.finite_values()

    def is_integral(self, key: str) -> bool:
        """Whether every value ``key`` can take is an integer."""
        values = self.possible_values(key)
        return values is not None and all(
            isinstance(v, int) and not isinstance(v, bool) and math.isfinite(v) for v in values
        )


def sample(space: SearchSpace, trial: Any) -> None:
    """Optuna's define-by-run function of ``space`` (bound with functools.partial: Ray pickles
    the searcher, and only module-level functions pickle by name)."""
    space.suggest(trial)
