"""Reading the YAML files users write (sweep files, LightningCLI configs), and resolving the
``${...}`` interpolations in them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tuning.errors import SweepError


class _YamlLoader(yaml.SafeLoader):
    """YAML that reads ``1e-4`` as a float, as YAML 1.2 and every user does (1.1 says string)."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def read_yaml(path: Path, what: str, fix: str) -> Any:
    """The YAML document in ``path``.

    Raises:
        SweepError: For a missing file (``what`` names it, ``fix`` says what to do) or
            broken YAML.
    """
    if not path.is_file():
        raise SweepError(f"{path}: {what} not found. Fix: {fix}")
    try:
        return yaml.load(path.read_text(), Loader=_YamlLoader)
    except yaml.YAMLError as exc:
        raise SweepError(f"{path}: broken YAML: {exc}") from None


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _strings(child, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _strings(child, f"{where}[{i}]")
    elif isinstance(value, str):
        yield where, value


def interpolate(data: dict[str, Any], source: str, keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """``data`` with its ``${...}`` interpolations resolved as OmegaConf resolves them
    (``${module_args.width}``, ``${oc.env:HOME}``), the keys ``keep`` left as written.

    Raises:
        SweepError: For an interpolation that does not resolve, or where OmegaConf is missing,
            naming the key.
    """
    found = [(where, text) for where, text in _strings(
        {k: v for k, v in data.items() if k not in keep}, "") if "${" in text]
    if not found:
        return data
    where, text = found[0]
    try:
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException
    except ImportError:
        raise SweepError(f"{source}: {where}: {text!r} is an interpolation, which needs "
                         "OmegaConf. Fix: pip install hydra-core, or write the value") from None
    kept = {k: data[k] for k in keep if k in data}
    try:
        resolved = OmegaConf.to_container(
            OmegaConf.create({k: v for k, v in data.items() if k not in keep}), resolve=True)
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or where
        message = " ".join(str(error).split("\n")[0].split())
        raise SweepError(f"{source}: {key}: {message}. Fix: refer to a key the sweep file has "
                         "(${section.key}), or an environment variable (${oc.env:NAME})") from None
    assert isinstance(resolved, dict)
    return {**{str(k): v for k, v in resolved.items()}, **kept}
