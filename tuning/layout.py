"""Where things live in an experiment directory, and the room its checkpoints take.

``<storage>/<name>/`` holds Ray Tune's experiment state, lightsweep's own files under
``lightsweep/`` and one ``trial_<id>/`` per trial, whose Train run keeps its checkpoints in
``trial_<id>/train/checkpoint_*/``.
"""

from __future__ import annotations

from typing import Any

from tuning.location import Location

# Under a subdirectory because Ray Tune, on restore, copies every top-level ``.json`` of the
# experiment to a staging directory and later syncs those copies back, over newer files.
LEDGER_FILE = "lightsweep/leaderboard.json"
TRIAL_DIR_PREFIX = "trial_"
TRAIN_RUN_NAME = "train"
CHECKPOINT_DIR_PREFIX = "checkpoint_"  # Ray Train's name for each checkpoint it persists
CHECKPOINT_SNAPSHOT = "checkpoint_manager_snapshot.json"  # Ray Train's list of those it tracks
CHECKPOINT_NAME = "checkpoint.ckpt"  # the Lightning checkpoint file in each checkpoint_* dir


def trial_dirname(trial: Any) -> str:
    """Tune's directory name for a trial: its id, so paths stay short and findable."""
    return f"{TRIAL_DIR_PREFIX}{trial.trial_id}"


def trial_path(experiment: Location, trial_id: str) -> Location:
    """A trial's directory; its Train run (and checkpoints) live in ``TRAIN_RUN_NAME`` below."""
    return experiment / f"{TRIAL_DIR_PREFIX}{trial_id}"


def _train_run(experiment: Location, trial_id: str) -> Location:
    return trial_path(experiment, trial_id) / TRAIN_RUN_NAME


def checkpoint_usage(experiment: Location, trial_id: str) -> tuple[int, int]:
    """How many checkpoints a trial keeps in storage, and their size in bytes.

    A checkpoint directory without files (Ray Train creating or deleting it) is not counted.
    """
    sizes: dict[str, int] = {}
    for relative, size in _train_run(experiment, trial_id).files():
        top = relative.split("/", 1)[0]
        if top.startswith(CHECKPOINT_DIR_PREFIX) and "/" in relative:
            sizes[top] = sizes.get(top, 0) + size
    return len(sizes), sum(sizes.values())


def remove_stray_checkpoints(
    experiment: Location, trial_id: str, reported: set[str]
) -> list[str]:
    """Removes the checkpoints of an ended trial's Train run that no result of it names, or
    that Ray Train no longer tracks.

    When ASHA stops a trial, its workers may still persist the epoch they were in before Ray
    kills them, and Train may even register it: a checkpoint no result Tune received names, and
    that ``num_to_keep`` never removes. Call this only for trials that will not run again.

    Args:
        experiment: The experiment directory.
        trial_id: The trial.
        reported: The names of the checkpoint directories its results named.

    Returns:
        The names of the checkpoint directories removed.
    """
    run = _train_run(experiment, trial_id)
    present = {relative.split("/", 1)[0] for relative, _ in run.files() if "/" in relative}
    kept = present & reported
    snapshot = run / CHECKPOINT_SNAPSHOT
    try:
        state = snapshot.read_json() if snapshot.is_file() else None
    except ValueError:  # Ray Train wrote it as the disk filled: cut short, so trust no list
        state = None
    if state is not None:
        tracked = {r["checkpoint_dir_name"] for r in state.get("checkpoint_results", [])}
        if state.get("latest_checkpoint_result"):
            tracked.add(state["latest_checkpoint_result"]["checkpoint_dir_name"])
        kept &= tracked
        latest = (state.get("latest_checkpoint_result") or {}).get("checkpoint_dir_name")
        if reported and not kept and latest in present:
            # Train ran epochs past the one Tune stopped the trial at, and its num_to_keep
            # removed every checkpoint a result named: keep its latest, never none.
            kept = {latest}
    removed = sorted(d for d in present if d.startswith(CHECKPOINT_DIR_PREFIX) and d not in kept)
    for name in removed:
        (run / name).remove()
    return removed
