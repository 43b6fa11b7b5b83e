"""Whether the installed Ray, Lightning and Optuna are within the versions lightsweep is tested
with.

lightsweep reaches into a few private parts of them (each with a comment saying why), so a
release outside the tested range may break it in ways no error names. The ranges are
pyproject.toml's, read back from the installed package's metadata: stated once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import metadata

from packaging.requirements import Requirement

logger = logging.getLogger(__name__)

WATCHED = ("ray", "lightning", "optuna")
_said = False


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _requirements() -> list[str]:
    try:
        return metadata.requires("lightsweep") or []
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return []


def untested_versions(requirements: list[str] | None = None,
                      installed: Callable[[str], str | None] = _installed) -> list[str]:
    """``"ray 2.61.0 (tested: <2.61,>=2.60)"`` for each watched package installed outside its
    tested range.

    Args:
        requirements: lightsweep's requirement strings (default: its installed metadata).
        installed: The installed version of a distribution, or None.
    """
    found = []
    for text in _requirements() if requirements is None else requirements:
        requirement = Requirement(text)
        if requirement.marker is not None or requirement.name not in WATCHED:
            continue  # an extra's requirement, or one whose internals lightsweep leaves alone
        version = installed(requirement.name)
        if version is not None and not requirement.specifier.contains(version, prereleases=True):
            found.append(f"{requirement.name} {version} (tested: {requirement.specifier})")
    return found


def warn_untested_versions() -> None:
    """Says, once per process, which watched packages are outside their tested range: before
    anything that reaches their private parts runs."""
    global _said
    if _said:
        return
    _said = True
    untested = untested_versions()
    if untested:
        logger.warning("untested versions: %s; lightsweep uses private parts of these, each "
                       "turned off with a warning where it moved. Fix: pip install -c "
                       "constraints.txt -e . (the tested stack)", ", ".join(untested))
