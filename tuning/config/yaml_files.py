"""Reading the YAML files users write (sweep files, LightningCLI configs)."""

from __future__ import annotations

import re
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
