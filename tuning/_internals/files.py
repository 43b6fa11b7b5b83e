"""The files Ray Train and Ray Tune keep in an experiment directory, read as they write them.

Private: the names and formats below. Public way: none (``Tuner.can_restore`` says only yes or
no; ``Result.best_checkpoints`` exists only after a run returns). Nothing here imports Ray:
reading an experiment needs none of it.
"""

from __future__ import annotations

import fnmatch
from typing import Any

# Ray Train's list of the checkpoints a run tracks, rewritten after each report. lightsweep reads
# it to tidy checkpoints and keeps a whole copy against a full disk.
TRAIN_CHECKPOINT_SNAPSHOT = "checkpoint_manager_snapshot.json"

# Ray Tune's state files, which it rewrites in place: lightsweep keeps whole copies against a
# full disk.
TUNE_EXPERIMENT_STATE = "experiment_state-*.json"
TUNE_SEARCH_GENERATOR_STATE = "search_gen_state-*.json"  # a cloudpickle, for all its name
TUNE_SEARCHER_STATE = "searcher-state-*.pkl"
TUNE_STATE_PATTERNS = (TUNE_EXPERIMENT_STATE, TUNE_SEARCH_GENERATOR_STATE, TUNE_SEARCHER_STATE,
                       "tuner.pkl")


def snapshot_checkpoints(state: dict[str, Any]) -> set[str]:
    """The checkpoint directory names Ray Train's snapshot tracks."""
    named = {r["checkpoint_dir_name"] for r in state.get("checkpoint_results", [])}
    latest = state.get("latest_checkpoint_result")
    if latest:
        named.add(latest["checkpoint_dir_name"])
    return named


def snapshot_latest(state: dict[str, Any]) -> str | None:
    """The name of the latest checkpoint in Ray Train's snapshot."""
    latest = state.get("latest_checkpoint_result") or {}
    name: str | None = latest.get("checkpoint_dir_name")
    return name


def is_searcher_state(name: str) -> bool:
    return fnmatch.fnmatch(name, TUNE_SEARCHER_STATE)


def newest_tune_state(names: list[str], pattern: str) -> str | None:
    """The file of ``pattern`` that Tune restores from: the greatest name (its session's time),
    by the rule of Tune's ``_find_newest_experiment_checkpoint``."""
    matching = fnmatch.filter(names, pattern)
    return max(matching) if matching else None
