"""Resolving ``package.module:ClassName`` to the user's classes, and which Lightning they use.

User code may be written against ``lightning.pytorch`` or the older ``pytorch_lightning``
namespace. The two define distinct classes, so a trial must build its Trainer, strategy and
callbacks from the namespace the user's LightningModule subclasses.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from types import ModuleType
from typing import Any

from tuning.errors import SweepError

NAMESPACES = ("lightning.pytorch", "pytorch_lightning")


def _imported_namespaces() -> list[ModuleType]:
    # A class can only subclass a namespace that is already imported; importing the other one
    # would cost seconds and re-set Lightning's shared logging hooks to that namespace.
    return [sys.modules[name] for name in NAMESPACES if name in sys.modules]


def import_from_launch_directory() -> None:
    """Lets this process import the user's code from the working directory, as ``python -m``
    does. Ray workers get the same directory through PYTHONPATH (see :mod:`tuning.driver.sweep`)."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def import_dotted(path: str, where: str) -> Any:
    """Imports a dotted ``package.module.Name`` (LightningCLI's and Hydra's form), trying the
    longest importable module first (``package.module.Outer.Inner`` works too).

    Raises:
        SweepError: If nothing of that name imports, naming ``where``.
    """
    parts = path.split(".")
    error: Exception | None = None
    for split in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError as exc:
            error = error or exc
            continue
        for part in parts[split:]:
            obj = getattr(obj, part, None)
        if obj is not None:
            return obj
    raise SweepError(
        f"{where}: cannot import {path!r}{f' ({error})' if error else ''}. Fix: write the full "
        "dotted path of an importable class, e.g. torch.optim.AdamW"
    )


def resolve_class(path: str, field: str) -> type:
    """Imports ``package.module:ClassName`` (or LightningCLI's ``package.module.ClassName``).

    Raises:
        SweepError: If the module does not import or has no such class, naming ``field``.
    """
    if ":" not in path:
        found = import_dotted(path, field)
        if not inspect.isclass(found):
            raise SweepError(f"{field}: {path!r} is not a class")
        return found
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SweepError(
            f"{field}: cannot import {module_name!r} ({exc}). Fix: check the spelling, launch from "
            "the directory that holds the package, or install it"
        ) from None
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise SweepError(
                f"{field}: module {module_name!r} has no {attr!r}. Fix: name a class defined there"
            )
    if not inspect.isclass(obj):
        raise SweepError(f"{field}: {path!r} is not a class")
    return obj


def lightning_namespace(cls: type, base: str) -> ModuleType:
    """The Lightning namespace (module) whose ``base`` class (e.g. "LightningModule") ``cls``
    subclasses, or raises SweepError naming what was expected."""
    for namespace in _imported_namespaces():
        if issubclass(cls, getattr(namespace, base)):
            return namespace
    raise SweepError(
        f"{cls.__module__}.{cls.__qualname__} is not a {base}. Fix: subclass "
        f"lightning.pytorch.{base} (or pytorch_lightning.{base})"
    )


def init_parameters(cls: type) -> tuple[dict[str, inspect.Parameter], bool]:
    """``cls.__init__``'s named parameters (without self) and whether it takes ``**kwargs``."""
    params = dict(inspect.signature(cls).parameters)  # the class's signature omits self
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = {
        n: p for n, p in params.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    return named, var_kw
