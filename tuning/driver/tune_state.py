"""Ray Tune's saved experiment state, made whole and consistent before a resume.

Ray Tune rewrites its state files in place; when the disk fills mid-write it leaves them cut
short, and the experiment can no longer be restored. lightsweep keeps the last whole version of
each beside the leaderboard, written atomically, and puts it back before a resume.

Tune saves its trials and its searcher together, but writes them to the experiment's storage one
file at a time: a driver killed in between (mid-upload to a bucket, above all) leaves trials and
searcher from different moments. Before a resume, the searcher is matched to the trials.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.search import Searcher
from typing_extensions import override

from tuning._internals import optuna_search as optuna_layer
from tuning._internals import tune_state as saved_state
from tuning._internals.files import (
    TUNE_EXPERIMENT_STATE,
    TUNE_SEARCH_GENERATOR_STATE,
    TUNE_SEARCHER_STATE,
    TUNE_STATE_PATTERNS,
    is_searcher_state,
    newest_tune_state,
)
from tuning._internals.probe import enabled
from tuning.driver.searcher import TruthfulOptunaSearch
from tuning.errors import is_storage_full
from tuning.record.files import atomic_write_bytes
from tuning.record.location import Location

logger = logging.getLogger(__name__)

STATE_PATTERNS = TUNE_STATE_PATTERNS
BACKUP_DIR = "lightsweep/tune-state"
BACKUP_EVERY_S = 1.0
# Tune's experiment state holds every trial (about 10 KB each): checking and copying it costs
# more as the sweep grows (100 MB at 10,000 trials), so copies wait long enough to keep their
# share of the driver's time at most this.
BACKUP_SHARE = 0.01
RESCAN_S = 30.0


def _whole(data: bytes) -> bool:
    if data.startswith(b"\x80"):  # a pickle (the search generator's too, though named .json)
        return data.endswith(b".")  # ends with its STOP opcode
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def searcher_state_saved(experiment: Location) -> bool:
    """Whether Ray Tune saved its searcher's state in ``experiment``, whole (it does so with, but
    after, its experiment state: a disk that fills in between leaves the one without the other).
    Call it after :func:`restore_whole_state`, which puts back a whole copy where there is one."""
    return any(_whole((experiment / name).read_bytes()) for name in experiment.names()
               if is_searcher_state(name))


def restore_whole_state(experiment: Path) -> list[str]:
    """Puts back the last whole copy of each Tune state file that is missing or cut short.

    Returns:
        The names of the files put back.
    """
    restored = []
    for backup in sorted((experiment / BACKUP_DIR).glob("*")):
        live = experiment / backup.name
        if live.is_file() and _whole(live.read_bytes()):
            continue
        data = backup.read_bytes()
        if _whole(data):
            atomic_write_bytes(live, data)
            restored.append(backup.name)
    return restored


def match_saved_search(experiment: Location) -> tuple[list[str], list[str]]:
    """Brings the searcher Tune will restore in line with the trials it will restore
    (:meth:`TruthfulOptunaSearch.match_saved_trials`), before a resume.

    Returns:
        The lost trial ids whose configurations are proposed again, and the restored trial ids
        the searcher had not proposed. Both empty where the two agree, or nothing is searched.
    """
    if not (enabled(saved_state.LAYER) and enabled(optuna_layer.LAYER)):
        return [], []
    names = experiment.names()
    state, generator, searcher_file = (newest_tune_state(names, pattern) for pattern in (
        TUNE_EXPERIMENT_STATE, TUNE_SEARCH_GENERATOR_STATE, TUNE_SEARCHER_STATE))
    if state is None or generator is None or searcher_file is None:
        return [], []  # nothing searched (a grid of seeds), or nothing saved
    trials = saved_state.saved_trials((experiment / state).read_bytes())
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(scratch) / searcher_file
        local.write_bytes((experiment / searcher_file).read_bytes())
        searcher = TruthfulOptunaSearch.__new__(TruthfulOptunaSearch)
        searcher.restore(str(local))  # Tune's own way of loading it
        lost, adopted = searcher.match_saved_trials(trials)
        if lost or adopted:
            searcher.save(str(local))
            (experiment / searcher_file).write_bytes(local.read_bytes())
    # Written second: a resume killed in between finds the searcher matched, and this again.
    matched = saved_state.search_generator_matching((experiment / generator).read_bytes(), trials)
    if matched is not None:
        (experiment / generator).write_bytes(matched)
    return lost, adopted


def continue_searcher(experiment: Location, searcher: Searcher) -> bool:
    """Loads into ``searcher`` the state Tune last saved of the experiment's searcher (its
    Optuna study with every trial it was told of, its sampler's random state), for a new Tune
    run that adds trials to the sweep (:func:`tuning.driver.sweep.resume` with more trials).
    lightsweep's searcher then counts every trial it proposed as of an earlier run
    (:meth:`TruthfulOptunaSearch.settle`).

    Returns:
        Whether there was a saved state to load.
    """
    name = newest_tune_state(experiment.names(), TUNE_SEARCHER_STATE)
    if name is None:
        return False
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(scratch) / name
        local.write_bytes((experiment / name).read_bytes())
        searcher.restore(str(local))  # Tune's own way of loading it
    if isinstance(searcher, TruthfulOptunaSearch):
        searcher.settle()
    return True


class TuneStateBackup(Callback):
    """Copies Tune's state files, each time one is whole and new, into ``BACKUP_DIR``."""

    def __init__(self, experiment: Path) -> None:
        self.experiment = experiment
        self._fresh()

    def _fresh(self) -> None:
        self._copied: dict[str, int] = {}  # file name -> modification time copied
        self._last = 0.0
        self._wait = BACKUP_EVERY_S  # seconds from one look at the files to the next
        self._files: list[Path] = []
        self._scanned = -RESCAN_S  # monotonic time of the last listing of the directory

    def __getstate__(self) -> dict[str, Any]:
        return {"experiment": self.experiment}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.experiment = state["experiment"]
        self._fresh()

    @override
    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        now = time.monotonic()
        if now - self._last < self._wait:
            return
        self._last = now
        # The directory holds a trial directory per trial: list it only now and then, and
        # until every kind of state file is there (Tune names them once per session).
        if now - self._scanned >= RESCAN_S or len(self._files) < len(STATE_PATTERNS):
            self._scanned = now
            self._files = [p for pattern in STATE_PATTERNS for p in self.experiment.glob(pattern)]
        for path in self._files:
            self._copy(path)
        self._wait = max(BACKUP_EVERY_S, (time.monotonic() - now) / BACKUP_SHARE)

    def _copy(self, path: Path) -> None:
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if self._copied.get(path.name) == mtime:
            return
        data = path.read_bytes()
        if not _whole(data):  # being written: next time
            return
        try:
            atomic_write_bytes(self.experiment / BACKUP_DIR / path.name, data)
        except OSError as error:
            if not is_storage_full(error):
                raise
            return  # the previous copy stays whole; the sweep stops on the full disk elsewhere
        self._copied[path.name] = mtime
