"""The trial's fit against the session it runs in (tuning.trial.session): what it reports, and
how it goes on from a checkpoint, whichever runner hands it the session."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
from ray import tune
from typing_extensions import override

from tests.conftest import BASE_SWEEP
from tuning.config.spec import SweepSpec
from tuning.contracts import LoopConfig
from tuning.record.layout import CHECKPOINT_NAME
from tuning.trial.session import TrainSession, TuneSession
from tuning.trial.worker import train_worker


class RecordingSession(TuneSession):
    """Inline's one process of rank 0, keeping a copy of each checkpoint, as Tune does, without
    Tune."""

    runner = "recording"

    def __init__(self, keep: Path, restored: Any | None = None) -> None:
        super().__init__()
        self.keep = keep
        self.restored = restored
        self.reports: list[tuple[dict[str, Any], Path | None]] = []

    @override
    def device(self) -> Any:
        import torch

        return torch.device("cpu")

    @override
    def checkpoint(self) -> Any | None:
        return self.restored

    @override
    def report(self, metrics: dict[str, Any], checkpoint: Any | None, last: bool = False
               ) -> None:
        kept = None
        if checkpoint is not None:  # the fit removes its directory once reported
            kept = self.keep / f"checkpoint_{len(self.reports)}"
            shutil.copytree(checkpoint.path, kept)
        self.reports.append((metrics, kept))


def _loop_config(max_epochs: int, known_epoch: int = 0) -> LoopConfig:
    data = copy.deepcopy(BASE_SWEEP)
    data["scheduler"]["max_epochs"] = max_epochs
    data["trainer_args"] = {"limit_train_batches": 4, "limit_val_batches": 2,
                            "log_every_n_steps": 1}
    spec = SweepSpec.model_validate(data)
    return LoopConfig(spec=spec,
                      config={"module.lr": 0.05, "datamodule.batch_size": 32},
                      known_epoch=known_epoch)


@pytest.mark.timeout(120)
def test_the_fit_reports_each_epoch_with_its_checkpoint_to_its_session(tmp_path: Path) -> None:
    session = RecordingSession(tmp_path)
    train_worker(_loop_config(max_epochs=2), session)
    assert [m["epoch"] for m, _ in session.reports] == [1, 2]
    for metrics, kept in session.reports:
        assert 0.0 <= metrics["val/acc"] <= 1.0
        assert metrics["world_size"] == 1 and metrics["ran/runner"] == "recording"
        assert kept is not None and (kept / CHECKPOINT_NAME).is_file()


@pytest.mark.timeout(120)
def test_a_fit_handed_its_last_checkpoint_goes_on_from_the_next_epoch(tmp_path: Path) -> None:
    first = RecordingSession(tmp_path / "first")
    train_worker(_loop_config(max_epochs=2), first)
    last = first.reports[-1][1]
    restored = RecordingSession(tmp_path / "again", tune.Checkpoint.from_directory(str(last)))
    train_worker(_loop_config(max_epochs=3, known_epoch=2), restored)
    # Epoch 2 goes again without a checkpoint (the sweep may have missed it), then epoch 3 is new.
    assert [(m["epoch"], kept is not None) for m, kept in restored.reports] == [(2, False),
                                                                                (3, True)]
    assert restored.reports[0][0]["val/acc"] == first.reports[-1][0]["val/acc"]


def test_inline_is_one_process_of_rank_zero_and_train_asks_rays_context() -> None:
    inline, train = TuneSession(), TrainSession()
    assert (inline.world_size, inline.world_rank, inline.runner) == (1, 0, "inline")
    assert inline.checkpoint_class is tune.Checkpoint
    with pytest.raises(RuntimeError):  # outside a Train run, Ray Train has no context to give
        train.world_size  # noqa: B018


class StoppedAtSession(RecordingSession):
    """Takes each report as Tune does, and stops the trial at ``epoch`` as Tune does: with
    ``SystemExit`` from its report."""

    def __init__(self, keep: Path, epoch: int) -> None:
        super().__init__(keep)
        self.stop_epoch = epoch
        self.logged_when_handed: list[set[int]] = []

    @override
    def report(self, metrics: dict[str, Any], checkpoint: Any | None, last: bool = False
               ) -> None:
        TuneSession.report(self, metrics, checkpoint, last)  # the inline session's own handling

    @override
    def close(self) -> None:
        TuneSession.close(self)

    @override
    def hand_to_tune(self, metrics: dict[str, Any], checkpoint: Any | None) -> None:
        RecordingSession.report(self, metrics, checkpoint)
        self.logged_when_handed.append(_logged_epochs(self.keep / "logs"))
        if metrics["epoch"] == self.stop_epoch:
            raise SystemExit(0)


def _logged_epochs(logs: Path) -> set[int]:
    """The epochs (from 0, as Lightning counts) a CSVLogger under ``logs`` has written."""
    path = logs / "t" / "version_0" / "metrics.csv"
    if not path.is_file():
        return set()
    rows = path.read_text().splitlines()
    column = rows[0].split(",").index("epoch")
    return {int(float(r.split(",")[column])) for r in rows[1:]}


def _with_csv_logger(config: LoopConfig, logs: Path) -> LoopConfig:
    spec = config.spec
    logger = {"class_path": "lightning.pytorch.loggers.CSVLogger",
              "init_args": {"save_dir": str(logs), "name": "t", "version": 0}}
    trainer_args = {**spec.trainer_args, "logger": logger}
    return config.but(spec=spec.model_copy(update={"trainer_args": trainer_args}))


@pytest.mark.timeout(120)
def test_a_trial_tune_stops_ends_its_fit_after_that_epochs_end(tmp_path: Path) -> None:
    # Its loggers get the epoch Tune stopped it at (a W&B run's last row), then the fit ends.
    session = StoppedAtSession(tmp_path, epoch=2)
    train_worker(_with_csv_logger(_loop_config(max_epochs=4), tmp_path / "logs"), session)
    assert session.stop_requested
    assert [m["epoch"] for m, _ in session.reports] == [1, 2]
    assert _logged_epochs(tmp_path / "logs") == {0, 1}  # Lightning counts from 0
    with pytest.raises(SystemExit):  # a fit that went on regardless ends at its next report
        session.report({"epoch": 3}, None)


@pytest.mark.timeout(120)
def test_the_last_epoch_goes_to_tune_once_the_fit_and_its_loggers_are_done(
        tmp_path: Path) -> None:
    # Tune stops a trial at max_epochs and may end its process at once: the last report waits
    # until every epoch is logged, and carries its checkpoint still.
    session = StoppedAtSession(tmp_path, epoch=2)
    train_worker(_with_csv_logger(_loop_config(max_epochs=2), tmp_path / "logs"), session)
    assert [m["epoch"] for m, _ in session.reports] == [1, 2]
    assert session.logged_when_handed[-1] == {0, 1}
    kept = session.reports[-1][1]
    assert kept is not None and (kept / CHECKPOINT_NAME).is_file()
    assert session.stop_requested


def test_a_loop_config_of_another_format_is_refused_naming_the_fix() -> None:
    from tuning.contracts import FORMAT, LOOP_CONFIG_KEY
    from tuning.errors import SweepError

    given = _loop_config(max_epochs=2).for_train()
    assert LoopConfig.of(given) == _loop_config(max_epochs=2)  # Ray Train's dict, read back
    given[LOOP_CONFIG_KEY]["format"] = FORMAT + 1  # from a worker of another lightsweep
    with pytest.raises(SweepError, match=f"format {FORMAT + 1}.*Fix: install the driver's"):
        train_worker(given, RecordingSession(Path("/nonexistent")))
