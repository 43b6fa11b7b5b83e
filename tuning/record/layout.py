"""Where things live in an experiment directory, and the room its checkpoints take.

``<storage>/<name>/`` holds Ray Tune's experiment state, lightsweep's own files under
``lightsweep/`` and one ``trial_<id>/`` per trial, whose Train run keeps its checkpoints in
``trial_<id>/train/checkpoint_*/`` (an inline trial's, kept by Tune: ``trial_<id>/checkpoint_*/``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from tuning._internals.files import TRAIN_CHECKPOINT_SNAPSHOT, snapshot_checkpoints, snapshot_latest
from tuning.record.lineage import PBT_DIR
from tuning.record.location import Location

logger = logging.getLogger(__name__)

# Under a subdirectory because Ray Tune, on restore, copies every top-level ``.json`` of the
# experiment to a staging directory and later syncs those copies back, over newer files.
LEDGER_FILE = "lightsweep/leaderboard.json"  # the record's snapshot
LEASE_FILE = "lightsweep/driver_lease.json"  # who drives the experiment (tuning.driver.lease)
EVENTS_DIR = "lightsweep/events"  # the record's events since that snapshot, one file per flush
TRIAL_DIR_PREFIX = "trial_"
TRAIN_RUN_NAME = "train"
CHECKPOINT_DIR_PREFIX = "checkpoint_"  # Ray Train's name for each checkpoint it persists
CHECKPOINT_SNAPSHOT = TRAIN_CHECKPOINT_SNAPSHOT  # Ray Train's list of those it tracks
# Ray Train rewrites its snapshot in place after each checkpoint; a disk that fills meanwhile
# leaves it cut short, and Train then refuses to start the run again. lightsweep keeps the last
# whole copy beside it.
WHOLE_SNAPSHOT = "checkpoint_manager_snapshot.whole.json"
CHECKPOINT_NAME = "checkpoint.ckpt"  # the Lightning checkpoint file in each checkpoint_* dir
GENERATION_FILE = f"{PBT_DIR}/generation"  # the exploit a trial's Train run started from
# An inline trial's exception from the user's code, in its directory: Tune retries a trial
# whatever failed it, and this makes those retries fail at once (tuning.trial.driver).
USER_ERROR_FILE = "user_error.txt"


def trial_dirname(trial: Any) -> str:
    """Tune's directory name for a trial: its id, so paths stay short and findable."""
    return f"{TRIAL_DIR_PREFIX}{trial.trial_id}"


def trial_path(experiment: Location, trial_id: str) -> Location:
    """A trial's directory; its Train run (and checkpoints) live in ``TRAIN_RUN_NAME`` below."""
    return experiment / f"{TRIAL_DIR_PREFIX}{trial_id}"


def _train_run(experiment: Location, trial_id: str) -> Location:
    return trial_path(experiment, trial_id) / TRAIN_RUN_NAME


def checkpoint_usage(experiment: Location, trial_id: str) -> tuple[int, int]:
    """How many checkpoints a trial keeps in storage, and their size in bytes: its Train run's,
    or, inline, Tune's.

    A checkpoint directory without files (Ray creating or deleting it) is not counted.
    """
    sizes: dict[str, int] = {}
    for relative, size in trial_path(experiment, trial_id).files():
        parts = relative.split("/")
        if parts[0] == TRAIN_RUN_NAME:
            parts = parts[1:]
        if len(parts) > 1 and parts[0].startswith(CHECKPOINT_DIR_PREFIX):
            sizes[parts[0]] = sizes.get(parts[0], 0) + size
    return len(sizes), sum(sizes.values())


def _checkpoint_dirs(run: Location) -> set[str]:
    """The directories in a Train run that hold files (its checkpoints, being written or not)."""
    return {relative.split("/", 1)[0] for relative, _ in run.files() if "/" in relative}


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
    present = _checkpoint_dirs(run)
    kept = present & reported
    # A snapshot Ray Train wrote as the disk filled is cut short: trust no list then.
    state = _whole_snapshot(run / CHECKPOINT_SNAPSHOT)
    if state is not None:
        kept &= snapshot_checkpoints(state)
        latest = snapshot_latest(state)
        if reported and not kept and latest in present:
            # Train ran epochs past the one Tune stopped the trial at, and its num_to_keep
            # removed every checkpoint a result named: keep its latest, never none.
            kept = {latest}
    removed = sorted(d for d in present if d.startswith(CHECKPOINT_DIR_PREFIX) and d not in kept)
    for name in removed:
        (run / name).remove()
    return removed


def _whole_snapshot(file: Location) -> dict[str, Any] | None:
    """The snapshot in ``file`` if it is there and whole, else None."""
    try:
        state = json.loads(file.read_bytes())
    except (FileNotFoundError, ValueError):  # absent, or cut short
        return None
    return state if isinstance(state, dict) else None


def keep_whole_snapshot(experiment: Location, trial_id: str) -> None:
    """Copies a trial's Ray Train snapshot aside while it is whole (call after each report).

    Only local experiments need it: a cloud object is there whole once its upload completes, or
    not at all. A copy that cannot be written (the disk is full) is removed rather than left
    stale: Train deletes the checkpoints it evicts after each snapshot, and a stale copy could
    name them.
    """
    run = _train_run(experiment, trial_id)
    snapshot = run / CHECKPOINT_SNAPSHOT
    if not experiment.is_local or _whole_snapshot(snapshot) is None:
        return
    copy = run / WHOLE_SNAPSHOT
    try:
        copy.write_bytes(snapshot.read_bytes())
    except OSError as error:  # the sweep hears of a full disk from its own writes
        logger.debug("trial %s: no whole copy of Train's snapshot (%s)", trial_id, error)
        copy.remove()


def repair_train_snapshot(experiment: Location, trial_id: str) -> str | None:
    """Makes a trial's Ray Train snapshot whole again before its run restarts.

    A snapshot cut short by a full disk is replaced by the last whole copy
    (:func:`keep_whole_snapshot`), if every checkpoint that copy names is still there; failing
    that it is removed, and Train starts the run afresh rather than not at all.

    Returns:
        What was done, for the log; None when the snapshot was whole or absent.
    """
    run = _train_run(experiment, trial_id)
    snapshot = run / CHECKPOINT_SNAPSHOT
    if not snapshot.is_file() or _whole_snapshot(snapshot) is not None:
        return None
    copy = run / WHOLE_SNAPSHOT
    state = _whole_snapshot(copy)
    present = _checkpoint_dirs(run)
    if state is not None and snapshot_checkpoints(state) <= present:
        snapshot.write_bytes(copy.read_bytes())
        return "restored Ray Train's checkpoint list, cut short by a full disk, from its last whole copy"
    snapshot.remove()
    return "removed Ray Train's checkpoint list, cut short by a full disk: the trial starts over"


def begin_generation(experiment: Location, trial_id: str, generation: int) -> bool:
    """Clears a trial's Train run the first time it starts after exploit ``generation``
    (population-based training), so that the run starts from the donor's copied checkpoint, not
    from its own last one. A run restarted within the generation (a dead worker, a resumed sweep)
    keeps its checkpoints.

    Returns:
        Whether the run was cleared.
    """
    marker = trial_path(experiment, trial_id) / GENERATION_FILE
    if marker.is_file() and marker.read_text().strip() == str(generation):
        return False
    _train_run(experiment, trial_id).remove()
    marker.write_text(str(generation))
    return True
