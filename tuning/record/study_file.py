"""The sweep's Optuna study as a SQLite file beside the experiment, for optuna-dashboard.

The searcher keeps its study in memory (Ray Tune pickles it with the searcher's state, and a
database per proposal would slow TPE down); :class:`StudyFile` copies each trial into
``EXPERIMENT_DIR/lightsweep/optuna.db`` once it ended, from the driver alone. A resumed sweep's
restored searcher goes on adding to the same file. Open it with::

    optuna-dashboard sqlite:///runs/NAME/lightsweep/optuna.db

An experiment in cloud storage gets the file too: kept in a local copy that the trials are added
to, and uploaded whole at most every :data:`UPLOAD_EVERY_S` seconds and when the sweep ends
(:func:`upload_pending`), never once per trial.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from optuna.trial import FrozenTrial

from tuning.record.location import Location

STUDY_FILE = "lightsweep/optuna.db"
STUDY_NAME = "lightsweep"
# User attributes of each copied trial: its number in the sweep's own study (what the file
# holds already), and its Ray Tune trial id (the leaderboard's, the trial directory's).
NUMBER_ATTR, TRIAL_ID_ATTR = "lightsweep_number", "trial_id"
UPLOAD_EVERY_S = 10.0

logger = logging.getLogger(__name__)

# Cloud study files holding trials not uploaded yet: the sweep's driver uploads them as it ends.
_PENDING: weakref.WeakSet[StudyFile] = weakref.WeakSet()


def upload_pending() -> None:
    """Uploads every cloud study file of this process that holds trials its upload lacks."""
    for study_file in list(_PENDING):
        try:
            study_file.upload()
        except OSError as error:  # a view for optuna-dashboard: never what fails a sweep
            logger.warning("%s not uploaded: %s", study_file.location, error)


class StudyFile:
    """An append-only SQLite copy of the sweep's study.

    Args:
        experiment: The experiment directory (local path or URI).
        directions: ``"maximize"`` or ``"minimize"`` for each objective of the sweep.
    """

    def __init__(self, experiment: str,
                 directions: Sequence[Literal["maximize", "minimize"]]) -> None:
        self.location = Location.parse(experiment) / STUDY_FILE
        self.directions = list(directions)
        self._fresh()

    def _fresh(self) -> None:
        self._study: Any = None  # the open study of the local file (or local copy)
        self._local: Path | None = None
        self._held: set[int] = set()  # numbers of the trials it holds: read once, then kept
        self._floor = 0  # every trial number below it is held
        self._uploaded_at = -UPLOAD_EVERY_S  # monotonic time of the last upload (cloud only)

    def __getstate__(self) -> dict[str, Any]:
        # Pickled with the searcher into Tune's state: a restored driver reads the file again.
        return {"location": self.location, "directions": self.directions}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "direction" in state:  # pickled by a single-objective lightsweep
            state = {"location": state["location"], "directions": [state["direction"]]}
        self.__dict__.update(state)
        self._fresh()

    def add(self, trials: Sequence[FrozenTrial], trial_ids: Mapping[int, str]) -> None:
        """Copies the ended ones of ``trials`` that the file does not hold yet.

        Args:
            trials: The sweep's study's trials, in number order (as a study lists them): only
                those from the first one the file lacks are looked at.
            trial_ids: Ray Tune's trial id of each trial number that has one.
        """
        start = self._floor if self._floor < len(trials) and (
            trials[self._floor].number == self._floor) else 0
        ended = [t for t in trials[start:] if t.number not in self._held
                 and t.state.is_finished()]
        if not ended:
            return
        if self._add(ended, trial_ids) and not self.location.is_local:
            _PENDING.add(self)
            if time.monotonic() - self._uploaded_at >= UPLOAD_EVERY_S:
                self.upload()

    def upload(self) -> None:
        """Uploads a cloud file's local copy (a local file is written in place)."""
        if self._local is not None and not self.location.is_local:
            self.location.write_bytes(self._local.read_bytes())
            self._uploaded_at = time.monotonic()
        _PENDING.discard(self)

    def _open(self) -> Any:
        import optuna

        if self.location.is_local:
            self._local = Path(self.location.uri)
            self._local.parent.mkdir(parents=True, exist_ok=True)
        else:
            # A local copy, fetched once: the driver alone adds to the file.
            directory = tempfile.mkdtemp(prefix="lightsweep-study-")
            weakref.finalize(self, shutil.rmtree, directory, ignore_errors=True)
            self._local = Path(directory, "optuna.db")
            if self.location.exists():
                self._local.write_bytes(self.location.read_bytes())
        study = optuna.create_study(storage=f"sqlite:///{self._local}", study_name=STUDY_NAME,
                                    directions=self.directions, load_if_exists=True)
        self._held = {int(t.user_attrs[NUMBER_ATTR]) for t in study.get_trials(deepcopy=False)
                      if NUMBER_ATTR in t.user_attrs}
        return study

    def _add(self, ended: list[FrozenTrial], trial_ids: Mapping[int, str]) -> bool:
        import optuna

        if self._study is None:
            self._study = self._open()
        study = self._study
        new = [t for t in ended if t.number not in self._held]
        for trial in new:
            attrs = {**trial.user_attrs, NUMBER_ATTR: trial.number}
            if trial.number in trial_ids:
                attrs[TRIAL_ID_ATTR] = trial_ids[trial.number]
            copy = optuna.trial.create_trial(
                state=trial.state, values=trial.values if trial.state.name == "COMPLETE" else None,
                params=trial.params, distributions=trial.distributions, user_attrs=attrs,
                system_attrs=trial.system_attrs, intermediate_values=trial.intermediate_values,
            )
            # Started and ended times too: optuna-dashboard plots durations from them.
            copy.datetime_start, copy.datetime_complete = (trial.datetime_start,
                                                           trial.datetime_complete)
            study.add_trial(copy)
            self._held.add(trial.number)
        while self._floor in self._held:
            self._floor += 1
        return bool(new)
