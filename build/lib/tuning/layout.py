"""Where things live in an experiment directory, and the room its checkpoints take.

``<storage>/<name>/`` holds Ray Tune's experiment state, lightsweep's own files under
``lightsweep/`` and one ``trial_<id>/`` per trial, whose Train run keeps its checkpoints in
``trial_<id>/train/checkpoint_*/``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

# Under a subdirectory because Ray Tune, on restore, copies every top-level ``.json`` of the
# experiment to a staging directory and later syncs those copies back, over newer files.
LEDGER_FILE = "lightsweep/leaderboard.json"
TRIAL_DIR_PREFIX = "trial_"
TRAIN_RUN_NAME = "train"
CHECKPOINT_DIR_PREFIX = "checkpoint_"  # Ray Train's name for each checkpoint it persists
CHECKPOINT_SNAPSHOT = "checkpoint_manager_snapshot.json"  # Ray Train's list of those it tracks


def trial_dirname(trial: Any) -> str:
    """Tune's directory name for a trial: its id, so paths stay short and findable."""
    return f"{TRIAL_DIR_PREFIX}{trial.trial_id}"


def trial_path(experiment_path: str, trial_id: str) -> str:
    """A trial's directory; its Train run (and checkpoints) live in ``TRAIN_RUN_NAME`` below."""
    return f"{experiment_path}/{TRIAL_DIR_PREFIX}{trial_id}"


def checkpoint_usage(experiment_path: str | Path, trial_id: str) -> tuple[int, int]:
    """How many checkpoints a trial keeps on disk, and their size in bytes.

    A checkpoint directory without files (Ray Train creating or deleting it) is not counted.
    """
    run_dir = Path(trial_path(str(experiment_path), trial_id), TRAIN_RUN_NAME)
    count = size = 0
    for ckpt in run_dir.glob(f"{CHECKPOINT_DIR_PREFIX}*"):
        files = [f for f in ckpt.rglob("*") if f.is_file()] if ckpt.is_dir() else []
        if files:
            count += 1
            size += sum(f.stat().st_size for f in files)
    return count, size


def remove_untracked_checkpoints(experiment_path: str | Path, trial_id: str) -> list[Path]:
    """Removes checkpoints of a trial's Train run that Ray Train no longer tracks.

    When ASHA stops a trial, its workers may still persist the epoch they were in before Ray
    kills them: a checkpoint no result names and ``num_to_keep`` never removes. Call this only
    for trials that will not run again.

    Returns:
        The directories removed (none when Train saved no snapshot of what it tracks).
    """
    run_dir = Path(trial_path(str(experiment_path), trial_id), TRAIN_RUN_NAME)
    snapshot = run_dir / CHECKPOINT_SNAPSHOT
    if not snapshot.is_file():
        return []
    state = json.loads(snapshot.read_text())
    tracked = {r["checkpoint_dir_name"] for r in state.get("checkpoint_results", [])}
    if state.get("latest_checkpoint_result"):
        tracked.add(state["latest_checkpoint_result"]["checkpoint_dir_name"])
    removed = [d for d in run_dir.glob(f"{CHECKPOINT_DIR_PREFIX}*")
               if d.is_dir() and d.name not in tracked]
    for directory in removed:
        shutil.rmtree(directory, ignore_errors=True)
    return removed
