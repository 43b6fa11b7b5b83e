"""The sweep's Optuna study as a SQLite file beside the experiment, for optuna-dashboard.

The searcher keeps its study in memory (Ray Tune pickles it with the searcher's state, and a
database per proposal would slow TPE down); :class:`StudyFile` copies each trial into
``EXPERIMENT_DIR/lightsweep/optuna.db`` once it ended, from the driver alone. A resumed sweep's
restored searcher goes on adding to the same file. Open it with::

    optuna-dashboard sqlite:///runs/NAME/lightsweep/optuna.db

An experiment in cloud storage gets the file too: written locally, then uploaded whole.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from optuna.trial import FrozenTrial

from tuning.record.location import Location

STUDY_FILE = "lightsweep/optuna.db"
STUDY_NAME = "lightsweep"
# User attributes of each copied trial: its number in the sweep's own study (what the file
# holds already), and its Ray Tune trial id (the leaderboard's, the trial directory's).
NUMBER_ATTR, TRIAL_ID_ATTR = "lightsweep_number", "trial_id"

logger = logging.getLogger(__name__)


class StudyFile:
    """An append-only SQLite copy of the sweep's study.

    Args:
        experiment: The experiment directory (local path or URI).
        direction: ``"maximize"`` or ``"minimize"``.
    """

    def __init__(self, experiment: str, direction: Literal["maximize", "minimize"]) -> None:
        self.location = Location.parse(experiment) / STUDY_FILE
        self.direction = direction
        self._open: tuple[Path, Any] | None = None  # the local file's study, and its path
        self._held: set[int] = set()  # numbers of the trials it holds: read once, then kept

    def __getstate__(self) -> dict[str, Any]:
        # Pickled with the searcher into Tune's state: a restored driver reads the file again.
        return {"location": self.location, "direction": self.direction}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._open, self._held = None, set()

    def add(self, trials: Iterable[FrozenTrial], trial_ids: Mapping[int, str]) -> None:
        """Copies the ended ones of ``trials`` that the file does not hold yet.

        Args:
            trials: The sweep's study's trials.
            trial_ids: Ray Tune's trial id of each trial number that has one.
        """
        held = self._held
        ended = [t for t in trials if t.number not in held and t.state.is_finished()]
        if not ended:
            return
        if self.location.is_local:
            self._add(Path(self.location.uri), ended, trial_ids)
            return
        with tempfile.TemporaryDirectory(prefix="lightsweep-study-") as tmp:
            local = Path(tmp, "optuna.db")
            if self.location.exists():
                local.write_bytes(self.location.read_bytes())
            if self._add(local, ended, trial_ids):
                self.location.write_bytes(local.read_bytes())

    def _add(self, path: Path, ended: list[FrozenTrial], trial_ids: Mapping[int, str]) -> bool:
        import optuna

        if self._open is None or self._open[0] != path:
            # Opened, and its trials read, once: the driver alone adds to it (a cloud file's
            # local copy is new each time, and read each time).
            path.parent.mkdir(parents=True, exist_ok=True)
            study = optuna.create_study(storage=f"sqlite:///{path}", study_name=STUDY_NAME,
                                        direction=self.direction, load_if_exists=True)
            self._held = {int(t.user_attrs[NUMBER_ATTR]) for t in study.get_trials(deepcopy=False)
                          if NUMBER_ATTR in t.user_attrs}
            self._open = (path, study) if self.location.is_local else None
        else:
            study = self._open[1]
        new = [t for t in ended if t.number not in self._held]
        for trial in new:
            attrs = {**trial.user_attrs, NUMBER_ATTR: trial.number}
            if trial.number in trial_ids:
                attrs[TRIAL_ID_ATTR] = trial_ids[trial.number]
            copy = optuna.trial.create_trial(
                state=trial.state, value=trial.value if trial.state.name == "COMPLETE" else None,
                params=trial.params, distributions=trial.distributions, user_attrs=attrs,
                system_attrs=trial.system_attrs, intermediate_values=trial.intermediate_values,
            )
            # Started and ended times too: optuna-dashboard plots durations from them.
            copy.datetime_start, copy.datetime_complete = (trial.datetime_start,
                                                           trial.datetime_complete)
            study.add_trial(copy)
            self._held.add(trial.number)
        return bool(new)
