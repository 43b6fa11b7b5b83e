"""How a metric's value is written for people: the leaderboard, ``best``, the report and the
sweep's progress lines write it alike."""

from __future__ import annotations


def metric_text(value: float | None) -> str:
    """``"-"`` for no value; a count as a whole number (``model/params``: 138930); else 4
    decimals (0.9575), or 4 significant digits when large."""
    if value is None:
        return "-"
    if abs(value) >= 1e4 and float(value).is_integer():
        return str(int(value))
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"
