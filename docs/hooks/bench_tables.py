"""mkdocs hook: each ``<!-- bench-table: NAME -->`` line of a page becomes that table of bench
figures, generated from ``bench/results/`` (:mod:`bench.tables`) each time the site is built."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

# mkdocs loads a hook by its file path, with the repository root not on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.tables import fill


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return fill(markdown)
