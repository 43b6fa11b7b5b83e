"""``bench/results/*.json``: each benchmark merges its figures in, leaving the others', and
records for each figure the run that made it (:func:`provenance`): the commit, the machine and
the date, under ``"provenance"``."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from tuning.record.files import atomic_write_text

RESULTS = Path(__file__).parent / "results" / "latest.json"
PROVENANCE_KEY = "provenance"  # figure name -> the run that made it


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpus() -> list[str]:
    try:
        found = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in found.stdout.splitlines() if line.strip()]


def _commit() -> str:
    here = Path(__file__).parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                              text=True, timeout=30, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, timeout=30,
                               check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}+changes" if dirty else head


def provenance() -> dict[str, Any]:
    """The run making figures now: commit (``+changes`` with uncommitted edits), machine, date."""
    return {"commit": _commit(), "date": datetime.date.today().isoformat(),
            "machine": {"cpu": _cpu_model(), "cores": os.cpu_count(), "gpus": _gpus()}}


def merge_results(path: Path, figures: dict[str, Any],
                  run: dict[str, Any] | None = None) -> None:
    """Updates the JSON object in ``path`` with ``figures`` (a new file if there is none), each
    figure recorded with the run that made it (``run``; this one by default), replacing the
    file whole so that an interrupted write never leaves half a file."""
    current = json.loads(path.read_text()) if path.exists() else {}
    made = provenance() if run is None else run
    runs = {**current.get(PROVENANCE_KEY, {}), **{name: made for name in figures}}
    atomic_write_text(path, json.dumps({**current, **figures, PROVENANCE_KEY: runs}, indent=1) + "\n")
