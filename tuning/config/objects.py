"""Objects in arguments: LightningCLI's ``class_path``/``init_args`` and Hydra's ``_target_``.

A value in ``module_args``, ``datamodule_args`` or a LightningCLI config may be an object::

    net: {class_path: my_project.nets.MLP, init_args: {hidden: 64}}      # LightningCLI
    optimizer: {class_path: torch.optim.AdamW, init_args: {lr: 0.001}}  # an OptimizerCallable
    net: {_target_: my_project.nets.MLP, hidden: 64}                    # Hydra
    optimizer: {_target_: torch.optim.Adam, _partial_: true, lr: 0.001} # a Hydra partial

LightningCLI's form is parsed, type-checked and built by jsonargparse through Lightning's own
``LightningArgumentParser`` (so whatever LightningCLI accepts is accepted here, callable-typed
parameters included); Hydra's form by ``hydra.utils.instantiate``. Sweeps pass objects as plain
data: every worker of every trial builds its own.
"""

from __future__ import annotations

import functools
import importlib
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal

from tuning.config.targets import import_dotted, init_parameters
from tuning.errors import SweepError

CLASS_PATH, INIT_ARGS = "class_path", "init_args"
TARGET = "_target_"
Form = Literal["lightning", "hydra"]


def is_object(value: Any) -> bool:
    """Whether ``value`` describes an object: LightningCLI's or Hydra's form."""
    return isinstance(value, Mapping) and (CLASS_PATH in value or TARGET in value)


def object_form(value: Any) -> Form | None:
    """Which form the objects in ``value`` (searched recursively) are written in, if any.

    Raises:
        SweepError: If both forms appear together (each builds differently).
    """
    forms: set[Form] = set()

    def visit(node: Any) -> None:
        if isinstance(node, Mapping):
            if CLASS_PATH in node:
                forms.add("lightning")
            if TARGET in node:
                forms.add("hydra")
            for child in node.values():
                visit(child)
        elif isinstance(node, list | tuple):
            for child in node:
                visit(child)

    visit(value)
    if len(forms) > 1:
        raise SweepError("objects are written both as class_path/init_args (LightningCLI) and "
                         "as _target_ (Hydra). Fix: use one form for one class's arguments")
    return next(iter(forms), None)


def class_name(obj: Mapping[str, Any]) -> str:
    """The dotted class path an object names."""
    return str(obj.get(CLASS_PATH, obj.get(TARGET)))


def _looks_like_class_path(value: Any) -> bool:
    return isinstance(value, str) and "." in value and all(
        part.isidentifier() for part in value.split("."))


def as_object(value: Any) -> Any:
    """``value``, with a class given by its bare path (``torch.optim.Adam``, as LightningCLI
    accepts it) written as the object ``{class_path: torch.optim.Adam}``."""
    return {CLASS_PATH: value} if _looks_like_class_path(value) else value


def _not_an_object(where: str, through: str, value: Any) -> SweepError:
    return SweepError(
        f"{where}: {through} is {value!r}, not an object to search inside. Fix: give {through} "
        "as an object ({class_path: ..., init_args: {...}} or {_target_: ...}) in the sweep "
        "file's arguments or the config"
    )


def set_path(args: dict[str, Any], path: str, value: Any, where: str) -> None:
    """Sets ``value`` at the dotted ``path`` inside ``args``, through nested objects.

    ``net.init_args.hidden`` is LightningCLI's full form; ``net.hidden`` (its command line's
    short form) goes into ``init_args`` too. A class given as a bare path
    (``optimizer: torch.optim.Adam``) becomes an object to set arguments in.

    Raises:
        SweepError: If the path runs through a value that is not an object, naming ``where``.
    """
    parts = path.split(".")
    node = args
    for depth, part in enumerate(parts):
        if CLASS_PATH in node and part not in (CLASS_PATH, INIT_ARGS):
            if not isinstance(node.get(INIT_ARGS), dict):
                node[INIT_ARGS] = {}
            node = node[INIT_ARGS]
        if depth == len(parts) - 1:
            node[part] = value
            return
        child = node.get(part)
        if parts[depth + 1] == INIT_ARGS and _looks_like_class_path(child):
            child = node[part] = as_object(child)
        if child is None and part == INIT_ARGS:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise _not_an_object(where, ".".join(parts[:depth + 1]), child)
        node = child


def has_path(args: Mapping[str, Any], path: str) -> bool:
    """Whether ``args`` sets the dotted ``path`` (through objects' ``init_args`` as
    :func:`set_path` goes)."""
    node: Any = args
    for part in path.split("."):
        if isinstance(node, Mapping) and CLASS_PATH in node and part not in (CLASS_PATH, INIT_ARGS):
            node = node.get(INIT_ARGS)
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _object_arguments(obj: Mapping[str, Any]) -> dict[str, Any]:
    if CLASS_PATH in obj:
        return dict(obj.get(INIT_ARGS) or {})
    return {k: v for k, v in obj.items() if not (k.startswith("_") and k.endswith("_"))}


def _takes(target: Any, names: list[str], where: str, label: str) -> None:
    try:
        params, var_kw = init_parameters(target)
    except (TypeError, ValueError):  # a builtin without a signature: nothing to check against
        return
    for name in names:
        if name not in params and not var_kw:
            raise SweepError(
                f"{where}: {label} takes no argument {name!r}. Fix: use one of "
                f"{', '.join(params) or '(none)'}"
            )


def check_path(cls: type, args: Mapping[str, Any], path: str, where: str) -> None:
    """Checks that ``path`` (``net.init_args.hidden``) runs through arguments that ``cls`` and
    the objects in ``args`` take.

    Raises:
        SweepError: Naming ``where``, the argument that is not taken and those that are.
    """
    parts = path.split(".")
    _takes(cls, parts[:1], where, f"{cls.__qualname__}.__init__")
    if len(parts) == 1:
        return
    value = as_object(args.get(parts[0]))
    if not is_object(value):
        raise _not_an_object(where, parts[0], value)
    target = import_dotted(class_name(value), where)
    rest = parts[1:]
    if CLASS_PATH in value and rest[0] in (CLASS_PATH, INIT_ARGS):
        if rest[0] == CLASS_PATH or len(rest) == 1:
            raise SweepError(f"{where}: search an argument inside init_args "
                             f"({parts[0]}.init_args.NAME), or the whole {parts[0]} with choice")
        rest = rest[1:]
    check_path(target, _object_arguments(value), ".".join(rest), where)


def check_object(obj: Mapping[str, Any], where: str) -> None:
    """Checks that one object's class imports and takes the arguments it is given.

    Raises:
        SweepError: Naming ``where``, the argument not taken and those that are.
    """
    if not is_object(obj):
        raise SweepError(f"{where}: {dict(obj)!r} is not an object. Fix: write it as "
                         "{class_path: pkg.Class, init_args: {...}}")
    target = import_dotted(class_name(obj), where)
    _takes(target, list(_object_arguments(obj)), where, class_name(obj))


def check_hydra_objects(value: Any, where: str) -> None:
    """Checks that every ``_target_`` in ``value`` imports and takes the arguments given."""
    if isinstance(value, Mapping):
        if TARGET in value:
            check_object(value, where)
        for key, child in value.items():
            check_hydra_objects(child, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for i, child in enumerate(value):
            check_hydra_objects(child, f"{where}[{i}]")


def _is_callable_type(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is Callable:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_is_callable_type(a) for a in typing.get_args(annotation)
                   if a is not type(None))
    return False


def check_callable_arguments(cls: type, args: Mapping[str, Any], where: str) -> None:
    """Refuses a plain number, flag or list given to a parameter typed as a callable
    (LightningCLI's ``OptimizerCallable``), which would fail only inside a trial."""
    try:
        hints = typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    except (NameError, TypeError, AttributeError):  # annotations this Python cannot resolve
        return
    for name, value in args.items():
        if name in hints and _is_callable_type(hints[name]) and not (
            value is None or is_object(value) or _looks_like_class_path(value) or callable(value)
        ):
            raise SweepError(
                f"{where}.{name}: {cls.__qualname__}.__init__ takes a callable here, got "
                f"{value!r}. Fix: give an object, e.g. {name}: {{class_path: torch.optim.Adam, "
                "init_args: {lr: 0.001}}"
            )


def _lightning_cli(pl: Any) -> Any:
    """``lightning.pytorch.cli`` (or ``pytorch_lightning.cli``): the user's namespace's."""
    return importlib.import_module(f"{pl.__name__}.cli")


def _parser(cls: type, pl: Any) -> Any:
    """Lightning's LightningCLI parser with ``cls``'s arguments under ``obj``, as LightningCLI
    adds a model or datamodule class it was given."""
    parser = _lightning_cli(pl).LightningArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, "obj", fail_untyped=False, sub_configs=True,
                               instantiate=False)
    return parser


def validate(cls: type, args: Mapping[str, Any], pl: Any, where: str) -> None:
    """Type-checks ``args`` for ``cls`` as LightningCLI would (without building anything).

    Raises:
        SweepError: With jsonargparse's (or Hydra's) own message, prefixed by ``where``.
    """
    try:
        form = object_form(args)
    except SweepError as exc:
        raise SweepError(f"{where}: {exc}") from None
    if form == "hydra":
        check_hydra_objects(dict(args), where)
        return
    check_callable_arguments(cls, args, where)
    if form is None:
        return
    from jsonargparse import ArgumentError

    try:
        _parser(cls, pl).parse_object({"obj": dict(args)})
    except ArgumentError as exc:
        message = " ".join(str(exc).split())
        raise SweepError(f"{where}: {message}") from None


def _hydra_instantiate(value: Any) -> Any:
    try:
        from hydra.utils import instantiate
    except ImportError:
        raise SweepError("objects written with _target_ are built by Hydra. Fix: pip install "
                         "hydra-core (or pip install 'lightsweep[hydra]')") from None
    return instantiate(value, _convert_="all")


def build_arguments(cls: type, args: Mapping[str, Any], pl: Any) -> dict[str, Any]:
    """``cls``'s keyword arguments with every object in ``args`` built (nets, optimizer
    callables, partials), as LightningCLI or Hydra would pass them."""
    form = object_form(args)
    if form is None:
        return dict(args)
    if form == "hydra":
        return {k: _hydra_instantiate(v) if object_form(v) else v for k, v in args.items()}
    parser = _parser(cls, pl)
    config = parser.instantiate_classes(parser.parse_object({"obj": dict(args)}))
    # The arguments given, built; the others keep the class's defaults, as if not passed.
    return {k: v for k, v in vars(config.obj).items() if k in args}


def build(cls: type, args: Mapping[str, Any], pl: Any) -> Any:
    """An instance of ``cls`` from ``args``, objects in them built first."""
    return cls(**build_arguments(cls, args, pl))


def apply_optimizer(model: Any, optimizer: Mapping[str, Any], lr_scheduler: Mapping[str, Any],
                    pl: Any) -> None:
    """Gives ``model`` the top-level ``optimizer`` (and ``lr_scheduler``) of a LightningCLI
    config as LightningCLI does: built over the model's parameters, replacing its
    ``configure_optimizers``."""
    if not optimizer:
        return
    cli = _lightning_cli(pl)
    built = cli.instantiate_class(model.parameters(), dict(optimizer))
    scheduler = cli.instantiate_class(built, dict(lr_scheduler)) if lr_scheduler else None
    configure = functools.partial(cli.LightningCLI.configure_optimizers, optimizer=built,
                                  lr_scheduler=scheduler)
    functools.update_wrapper(configure, cli.LightningCLI.configure_optimizers)
    model.configure_optimizers = types.MethodType(configure, model)
