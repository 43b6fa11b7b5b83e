"""Named layers over private parts, each probed once per process and turned off where it fails.

A layer is one thing lightsweep does through a private part of Ray, Lightning, torch, Optuna or
W&B (a process saved per trial, a resume repaired, a console line dropped). Its probe imports
that part inside a function and checks it is what lightsweep expects; where it is not (a release
moved it), the layer is off: lightsweep goes Ray's documented way for it and logs one warning
naming the layer and what happens instead. The sweep's driver probes every layer at launch and
hands the names of those off to the sweep's processes (:data:`OFF_ENV`), which then skip them
without warning again.

``LIGHTSWEEP_STOCK_RAY=1`` (``launch --stock-ray``) turns every layer of a trial's execution off:
each trial is Ray's own ``TorchTrainer`` run, with Train's controller, cleaner and synchronization
actor, no workers started ahead and no placement group removed by the driver.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

STOCK_RAY_ENV = "LIGHTSWEEP_STOCK_RAY"  # "1": trials go Ray's documented ways only
OFF_ENV = "LIGHTSWEEP_LAYERS_OFF"  # the layers the sweep's driver found off, comma-separated

# What a private part that a release moved or changed fails with.
MOVED_ERRORS: tuple[type[BaseException], ...] = (AttributeError, ImportError, KeyError,
                                                 TypeError, ValueError)


@dataclass(frozen=True)
class Layer:
    """One use of a private part.

    Attributes:
        name: Its name (``controller-in-trial``), as warnings and :data:`OFF_ENV` give it.
        does: What it does, as a warning says it.
        instead: What happens where it is off (Ray's documented way), as a warning says it.
        check: Raises one of :data:`MOVED_ERRORS` where the installed releases lack the part.
        execution: Part of how a trial executes (stock-Ray mode turns it off); False for those
            that keep a feature (the searcher's, PBT's, a reader's).
        since: The first Ray release that has what the layer changes: in an older one there is
            nothing to change, and the layer is off without a warning.
        needs_ray: Its probe asks the running Ray (a cluster's resources): :func:`probe_all`
            leaves it for its first use where Ray is not up yet.
    """

    name: str
    does: str
    instead: str
    check: Callable[[], object]
    execution: bool = True
    since: str | None = None
    needs_ray: bool = False


_LAYERS: dict[str, Layer] = {}
# name -> why it is off (None: on), once probed in this process
_VERDICTS: dict[str, str | None] = {}


def layer(name: str, does: str, instead: str, *, execution: bool = True, since: str | None = None,
          needs_ray: bool = False) -> Callable[[Callable[[], object]], Callable[[], object]]:
    """Registers the decorated function as the probe of layer ``name``."""

    def register(check: Callable[[], object]) -> Callable[[], object]:
        _LAYERS[name] = Layer(name, does, instead, check, execution, since, needs_ray)
        return check

    return register


def classes_in_source(package: str, module: str) -> dict[str, set[str]]:
    """The classes that ``package``'s file ``module`` defines, each with the names of the
    functions it defines, read from its source: for a probe whose module's import would cost
    what the layer saves (torch, Lightning).

    Raises:
        ImportError: Where the package or the file is not there.
    """
    import ast
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"no package {package}")
    try:
        source = Path(next(iter(spec.submodule_search_locations)), module).read_text()
    except OSError as error:
        raise ImportError(f"{package}/{module} unreadable: {error}") from None
    return {node.name: {f.name for f in node.body
                        if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)}
            for node in ast.parse(source).body if isinstance(node, ast.ClassDef)}


def require_methods(classes: dict[str, set[str]], wanted: dict[str, set[str] | tuple[str, ...]],
                    where: str) -> None:
    """Raises ImportError unless each class of ``wanted`` is in ``classes`` with its methods."""
    for name, methods in wanted.items():
        if not set(methods) <= classes.get(name, set()):
            raise ImportError(f"{where} has no {name} with {sorted(methods)}")


def stock_ray() -> bool:
    """Whether trials go through Ray's documented paths only (:data:`STOCK_RAY_ENV`)."""
    return os.environ.get(STOCK_RAY_ENV, "") not in ("", "0")


def _driver_off() -> set[str]:
    return {name for name in os.environ.get(OFF_ENV, "").split(",") if name}


def enabled(name: str) -> bool:
    """Whether layer ``name`` is on in this process: probed on first call (a warning where its
    private part is not what lightsweep expects)."""
    if name not in _VERDICTS:
        found = _LAYERS[name] if name in _LAYERS else layers()[name]
        if found.execution and stock_ray():
            _VERDICTS[name] = "stock Ray"
        elif not applies(name):
            _VERDICTS[name] = f"nothing to change before Ray {found.since}"
        elif name in _driver_off():
            _VERDICTS[name] = "off in the sweep's driver"  # which warned already
        else:
            try:
                found.check()
                _VERDICTS[name] = None
            except MOVED_ERRORS as error:
                _VERDICTS[name] = f"{type(error).__name__}: {error}"
                logger.warning("%s is off with the installed releases (%s): %s", found.does,
                               _VERDICTS[name], found.instead)
    return _VERDICTS[name] is None


def applies(name: str) -> bool:
    """Whether the installed Ray has what layer ``name`` changes (see :attr:`Layer.since`)."""
    since = (_LAYERS[name] if name in _LAYERS else layers()[name]).since
    return since is None or not _ray_older_than(since)


def _ray_older_than(release: str) -> bool:
    from importlib import metadata

    from packaging.version import Version

    return Version(metadata.version("ray")) < Version(release)


def probe_all() -> list[str]:
    """Probes every layer (warning once for each that is off); returns the names of those off.
    A layer whose probe asks the running Ray waits for its first use where Ray is not up."""
    import sys

    ray = sys.modules.get("ray")
    ray_up = ray is not None and ray.is_initialized()
    return [name for name, found in layers().items()
            if (ray_up or not found.needs_ray) and not enabled(name)]


# The modules of tuning._internals that register layers (each as it is imported).
_MODULES = ("torch_backend", "datasets", "controller", "cleaner", "autoscaler",
            "placement_groups", "prestart", "failures", "tune_state", "optuna_search", "pbt",
            "lightning", "head_node", "wandb", "tune_results", "asha")


def layers() -> dict[str, Layer]:
    """Every layer, by name."""
    import importlib

    for module in _MODULES:
        importlib.import_module(f"tuning._internals.{module}")
    return _LAYERS


def forget() -> None:
    """Forgets this process's verdicts (tests, and a driver whose environment changed)."""
    _VERDICTS.clear()
