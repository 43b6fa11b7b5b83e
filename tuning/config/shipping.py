"""What a cluster's nodes get of the launch directory, and the relative paths they will miss.

On a cluster, Ray ships the launch directory to every node as the trials' working directory
(:func:`tuning.driver.sweep.runtime_env`), leaving out what its ``.gitignore`` files name and
:data:`SHIPPING_EXCLUDES`. Data is not shipped: a relative path to data that lies outside the
launch directory, or that ``.gitignore`` leaves out (the usual ``data/``), exists on the launching
machine and nowhere else.
"""

from __future__ import annotations

import inspect
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePath
from typing import Any

# Never shipped to a cluster (on top of what .gitignore names): environments, results (the
# default storage), checkpoints, caches.
SHIPPING_EXCLUDES = [".venv", "venv", ".git", "runs", "**/*.ckpt", "**/__pycache__",
                     ".mypy_cache", ".ruff_cache", ".pytest_cache"]


def _relative_paths(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key, child in value.items():
            yield from _relative_paths(child, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for i, child in enumerate(value):
            yield from _relative_paths(child, f"{where}[{i}]")
    elif isinstance(value, str) and value and not PurePath(value).is_absolute() and (
            "://" not in value):
        yield where, value  # a path if it exists (why_not_shipped looks)


def _gitignored(path: Path, launch_dir: Path) -> bool:
    try:
        found = subprocess.run(["git", "-C", str(launch_dir), "check-ignore", "-q", str(path)],
                               capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):  # no git: nothing ignored by it
        return False
    return found.returncode == 0


def why_not_shipped(text: str, launch_dir: Path) -> str | None:
    """Why the relative path ``text``, which exists here, will not exist on a cluster's nodes;
    None when it is shipped (or does not exist here)."""
    path = (launch_dir / text).resolve()
    if not path.exists():
        return None
    if not path.is_relative_to(launch_dir.resolve()):
        return "it lies outside the launch directory, which is what Ray ships"
    parts = path.relative_to(launch_dir.resolve()).parts
    excluded = [e for e in SHIPPING_EXCLUDES if "*" not in e and e in parts]
    if excluded:
        return f"lightsweep does not ship {excluded[0]}/"
    if _gitignored(path, launch_dir):
        return ".gitignore leaves it out of what Ray ships"
    return None


def unshipped_paths(args: Mapping[str, Mapping[str, Any]], classes: Mapping[str, type],
                    launch_dir: Path) -> list[str]:
    """Warnings for the relative paths, in arguments (``args`` by field) and in the defaults of
    ``classes`` (by field), that exist here but will not on a cluster's nodes."""
    found: list[tuple[str, str]] = []
    for field, values in args.items():
        found += list(_relative_paths(dict(values), field))
    for field, cls in classes.items():
        try:
            params = inspect.signature(cls).parameters.values()
        except (TypeError, ValueError):
            continue
        found += [(f"{field}: {cls.__qualname__}'s default {p.name}", p.default) for p in params
                  if isinstance(p.default, str) and (p.name not in args.get(field, {}))
                  and list(_relative_paths(p.default, ""))]
    warnings = []
    for where, text in found:
        reason = why_not_shipped(text, launch_dir)
        if reason:
            warnings.append(
                f"{where}: {text!r} exists here, but not on the cluster's nodes ({reason}): "
                "trials there read it relative to the shipped working directory. Fix: put it on "
                "storage every node mounts and give its absolute path (or a cloud URI)")
    return warnings
