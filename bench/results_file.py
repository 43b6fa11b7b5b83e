"""``bench/results/latest.json``: each benchmark merges its figures in, leaving the others'."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tuning.record.files import atomic_write_text

RESULTS = Path(__file__).parent / "results" / "latest.json"


def merge_results(path: Path, figures: dict[str, Any]) -> None:
    """Updates the JSON object in ``path`` with ``figures`` (a new file if there is none),
    replacing it whole so that an interrupted write never leaves half a file."""
    current = json.loads(path.read_text()) if path.exists() else {}
    atomic_write_text(path, json.dumps({**current, **figures}, indent=1) + "\n")
