"""The search-space syntax of sweep files, and its translation into Ray Tune distributions.

Each key of a sweep file's ``space`` section is routed by its prefix to the LightningModule
(``module.``), the LightningDataModule (``datamodule.``) or the Lightning Trainer (``trainer.``).
A value is a distribution::

    module.lr: {loguniform: [1.0e-4, 1.0e-1]}
    module.dropout: {uniform: [0.0, 0.5]}
    module.width: {int: [16, 128], step: 16}     # inclusive bounds
    datamodule.batch_size: {choice: [32, 64, 128]}

or a bare value, which is fixed.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ray import tune

from tuning.errors import SweepError

ROUTES = ("module", "datamodule", "trainer")


class Distribution(abc.ABC):
    """One searched parameter's distribution."""

    name: ClassVar[str]

    @abc.abstractmethod
    def to_tune(self) -> Any:
        """Returns the Ray Tune domain (which OptunaSearch converts for Optuna)."""

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

    def to_tune(self) -> Any:
        return tune.loguniform(self.low, self.high)


@dataclass(frozen=True)
class Uniform(Distribution):
    low: float
    high: float
    name = "uniform"

    def to_tune(self) -> Any:
        return tune.uniform(self.low, self.high)


@dataclass(frozen=True)
class IntRange(Distribution):
    """Integers from ``low`` to ``high`` inclusive, every ``step``."""

    low: int
    high: int
    step: int = 1
    name = "int"

    def to_tune(self) -> Any:
        # Tune's qrandint is inclusive of its upper bound, as sweep files promise.
        return tune.qrandint(self.low, self.high, self.step)

    def finite_values(self) -> list[Any] | None:
        return list(range(self.low, self.high + 1, self.step))


@dataclass(frozen=True)
class Choice(Distribution):
    values: tuple[Any, ...]
    name = "choice"

    def to_tune(self) -> Any:
        return tune.choice(list(self.values))

    def finite_values(self) -> list[Any] | None:
        return list(self.values)


def _parse_int(key: str, spec: Any, step: Any) -> IntRange:
    low, high = _bounds(key, spec, "int")
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
    return IntRange(int(low), int(high), step)


def parse_distribution(key: str, value: Any) -> Distribution | None:
    """Parses one ``space`` entry; returns None for a bare (fixed) value.

    Raises:
        SweepError: For an unknown distribution or bad bounds, naming the key and the fix.
    """
    if not isinstance(value, Mapping):
        return None
    kinds = [k for k in value if k != "step"]
    known = ("loguniform", "uniform", "int", "choice")
    if len(kinds) != 1 or kinds[0] not in known:
        raise SweepError(
            f"space.{key}: unknown distribution {value!r}. "
            f"Fix: use one of {', '.join(f'{{{k}: ...}}' for k in known)}, or a bare value"
        )
    kind = kinds[0]
    spec = value[kind]
    if "step" in value and kind != "int":
        raise SweepError(f"space.{key}: 'step' only goes with int, not {kind}")
    if kind == "choice":
        if not isinstance(spec, list | tuple) or not spec:
            raise SweepError(
                f"space.{key}: choice needs a non-empty list, got {spec!r}. "
                "Fix: {choice: [a, b, ...]}"
            )
        return Choice(tuple(spec))
    if kind == "int":
        return _parse_int(key, spec, value.get("step"))
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
    """Splits ``"module.lr"`` into ``("module", "lr")``.

    Raises:
        SweepError: If the prefix is not one of :data:`ROUTES`.
    """
    route, dot, arg = key.partition(".")
    if not dot or route not in ROUTES or not arg.isidentifier():
        raise SweepError(
            f"space.{key}: unknown prefix in {key!r}. Fix: start the key with one of "
            f"{', '.join(r + '.' for r in ROUTES)} followed by the argument name (module.lr)"
        )
    return route, arg


@dataclass(frozen=True)
class SearchSpace:
    """A parsed ``space`` section: searched distributions and fixed values, by full key."""

    searched: dict[str, Distribution]
    fixed: dict[str, Any]

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> SearchSpace:
        searched: dict[str, Distribution] = {}
        fixed: dict[str, Any] = {}
        for key, value in raw.items():
            split_key(key)
            dist = parse_distribution(key, value)
            if dist is None:
                fixed[key] = value
            else:
                searched[key] = dist
        return cls(searched, fixed)

    def to_tune(self) -> dict[str, Any]:
        """The ``param_space`` for the Tuner: one entry per searched key."""
        return {key: dist.to_tune() for key, dist in self.searched.items()}

    def keys_for(self, route: str) -> dict[str, str]:
        """Maps argument name to full key for every searched or fixed key of ``route``."""
        return {
            split_key(k)[1]: k for k in (*self.searched, *self.fixed) if split_key(k)[0] == route
        }

    def possible_values(self, key: str) -> list[Any] | None:
        """All values ``key`` can take, or None when it is continuous (or absent)."""
        if key in self.fixed:
            return [self.fixed[key]]
        dist = self.searched.get(key)
        return dist.finite_values() if dist is not None else None

    def is_integral(self, key: str) -> bool:
        """Whether every value ``key`` can take is an integer."""
        values = self.possible_values(key)
        return values is not None and all(
            isinstance(v, int) and not isinstance(v, bool) and math.isfinite(v) for v in values
        )
