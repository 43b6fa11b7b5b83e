"""The driver's record keeping, driven by fake Tune trials (as Ray's own Train V2 tests fake
their worker groups): what each trial event leaves in storage, without starting Ray."""

from __future__ import annotations

import errno
import itertools
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ray.tune.integration.ray_train import CHECKPOINT_PATH_KEY

from tests.conftest import BASE_SWEEP
from tuning.config.spec import SweepSpec
from tuning.contracts import RESENT_CHECKPOINT_KEY
from tuning.errors import StorageFullError
from tuning.record import EventLog, Ledger, LedgerCallback, callback
from tuning.record.layout import LEDGER_FILE
from tuning.record.location import Location


@dataclass
class FakeTrial:
    """What the callback reads of a Tune trial."""

    trial_id: str
    config: dict[str, Any] = field(default_factory=lambda: {"module.lr": 0.1})
    error: BaseException | None = None
    pickled_error_file: str | None = None

    def get_pickled_error(self) -> BaseException | None:
        return self.error


@pytest.fixture
def experiment(tmp_path: Path) -> Location:
    return Location.parse(tmp_path / "exp")


@pytest.fixture(autouse=True)
def _no_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(callback, "LAST_TIDY_WAIT_S", 0.0)


def _spec(max_epochs: int = 3) -> SweepSpec:
    return SweepSpec.model_validate({**BASE_SWEEP, "scheduler": {
        **BASE_SWEEP.get("scheduler", {}), "max_epochs": max_epochs, "grace_period": 1}})


def _started(experiment: Location, spec: SweepSpec | None = None) -> LedgerCallback:
    keeper = LedgerCallback(experiment, spec or _spec())
    keeper.setup()
    return keeper


def _report(keeper: LedgerCallback, trial: FakeTrial, epoch: int, value: float,
            checkpoint: str | None = None, seconds: float = 1.0) -> None:
    result: dict[str, Any] = {"epoch": epoch, "val/acc": value, "time_this_iter_s": seconds}
    if checkpoint:
        result[CHECKPOINT_PATH_KEY] = str(Path(keeper.experiment.uri) / trial.trial_id / checkpoint)
    keeper.on_trial_result(0, [], trial, result)  # type: ignore[arg-type]


def _resumed(keeper: LedgerCallback, known: list[FakeTrial]) -> LedgerCallback:
    """The callback as a resumed Tune has it, after the sweep stopped (Tune's cleanup ends its
    callbacks, on an interrupt or an error too): unpickled from its saved state, set up again."""
    keeper.on_experiment_end([])
    again: LedgerCallback = pickle.loads(pickle.dumps(keeper))
    again.setup()
    again.on_step_begin(0, known)  # type: ignore[arg-type]
    return again


def test_reports_are_logged_as_events_not_a_rewritten_snapshot(
    experiment: Location, monkeypatch: pytest.MonkeyPatch,
) -> None:
    keeper = _started(experiment)
    snapshot = Path(experiment.uri) / LEDGER_FILE
    written = snapshot.stat().st_mtime_ns
    trial = FakeTrial("a")
    keeper.on_trial_start(0, [], trial)  # type: ignore[arg-type]
    for epoch in range(1, 4):
        _report(keeper, trial, epoch, epoch / 10)
    assert snapshot.stat().st_mtime_ns == written, "no snapshot per report"
    assert Ledger.load(experiment).trials == {}, "buffered: flushed every few seconds"
    monkeypatch.setattr(callback, "FLUSH_S", 0.0)
    keeper.on_step_end(0, [trial])  # type: ignore[arg-type]
    assert Ledger.load(experiment).trials["a"].epochs == 3
    assert snapshot.stat().st_mtime_ns == written


def test_an_ended_trial_is_in_storage_with_its_checkpoint_use(
    experiment: Location, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(callback, "FLUSH_S", 0.0)
    keeper = _started(experiment)
    trial = FakeTrial("a")
    keeper.on_trial_start(0, [], trial)  # type: ignore[arg-type]
    (Path(experiment.uri) / "trial_a/train/checkpoint_1/checkpoint.ckpt").parent.mkdir(parents=True)
    (Path(experiment.uri) / "trial_a/train/checkpoint_1/checkpoint.ckpt").write_bytes(b"x" * 10)
    for epoch in range(1, 4):
        _report(keeper, trial, epoch, epoch / 10)
    keeper.on_trial_complete(0, [], trial)  # type: ignore[arg-type]
    record = Ledger.load(experiment).trials["a"]
    assert (record.status, record.epochs, record.checkpoints, record.checkpoint_bytes) == (
        "completed", 3, 1, 10)


def test_an_epoch_sent_again_by_a_restarted_run_keeps_its_checkpoint_and_adds_its_time(
    experiment: Location,
) -> None:
    keeper = _started(experiment)
    trial = FakeTrial("a")
    _report(keeper, trial, 1, 0.5, checkpoint="checkpoint_1", seconds=4.0)
    _report(keeper, trial, 1, 0.5, seconds=3.0)  # the restart's report, without a checkpoint
    keeper.on_experiment_end([])
    [epoch] = Ledger.load(experiment).trials["a"].history
    assert epoch.checkpoint is not None and epoch.checkpoint.endswith("checkpoint_1/checkpoint.ckpt")
    assert epoch.seconds == 7.0


def test_an_epoch_a_killed_driver_never_recorded_gets_the_checkpoint_its_resumed_run_names(
    experiment: Location,
) -> None:
    keeper = _started(experiment)
    trial = FakeTrial("a")
    restored = str(Path(experiment.uri) / "a" / "checkpoint_6")
    keeper.on_trial_result(0, [], trial, {  # type: ignore[arg-type]
        "epoch": 6, "val/acc": 0.9, RESENT_CHECKPOINT_KEY: restored})
    keeper.on_experiment_end([])
    [epoch] = Ledger.load(experiment).trials["a"].history
    assert epoch.checkpoint == f"{restored}/checkpoint.ckpt"
    assert RESENT_CHECKPOINT_KEY not in epoch.metrics


def test_a_finished_trial_handing_a_resumed_tune_its_result_changes_nothing(
    experiment: Location,
) -> None:
    keeper = _started(experiment, _spec(max_epochs=2))
    trial = FakeTrial("a")
    for epoch in (1, 2):
        _report(keeper, trial, epoch, epoch / 10, seconds=5.0)
    keeper.on_trial_complete(0, [], trial)  # type: ignore[arg-type]
    again = _resumed(keeper, [trial])
    again.on_trial_start(0, [trial], trial)  # type: ignore[arg-type]
    _report(again, trial, 2, 0.2, seconds=1.0)
    again.on_trial_complete(0, [trial], trial)  # type: ignore[arg-type]
    again.on_experiment_end([trial])  # type: ignore[list-item]
    record = Ledger.load(experiment).trials["a"]
    assert record.status == "completed" and [e.seconds for e in record.history] == [5.0, 5.0]


def test_on_resume_a_finished_trial_tune_lost_is_adopted_and_a_running_one_dropped(
    experiment: Location,
) -> None:
    keeper = _started(experiment, _spec(max_epochs=1))
    done, lost = FakeTrial("done", {"module.lr": 0.3}), FakeTrial("lost", {"module.lr": 0.4})
    for trial in (done, lost):
        keeper.on_trial_start(0, [], trial)  # type: ignore[arg-type]
    _report(keeper, done, 1, 0.9)
    keeper.on_trial_complete(0, [], done)  # type: ignore[arg-type]
    again = _resumed(keeper, known=[])  # Tune saved its state before either trial
    assert sorted(Ledger.load(experiment).trials) == ["done"], "the record trials read is settled"
    proposed = FakeTrial("new", {"module.lr": 0.3})  # the searcher proposes done's config again
    again.on_trial_start(0, [proposed], proposed)  # type: ignore[arg-type]
    again.on_experiment_end([proposed])  # type: ignore[list-item]
    record = Ledger.load(experiment).trials
    assert list(record) == ["new"] and record["new"].status == "completed"
    assert record["new"].best_epoch("val/acc", "max").metrics["val/acc"] == 0.9  # type: ignore[union-attr]


def test_a_stopped_trials_unreported_checkpoints_are_tidied_at_the_end(
    experiment: Location,
) -> None:
    keeper = _started(experiment, _spec(max_epochs=5))
    trial = FakeTrial("a")
    run = Path(experiment.uri) / "trial_a/train"
    for name in ("checkpoint_1", "checkpoint_2"):
        (run / name).mkdir(parents=True)
        (run / name / "checkpoint.ckpt").write_bytes(b"x")
    _report(keeper, trial, 1, 0.5, checkpoint="checkpoint_1")
    keeper.on_trial_complete(0, [], trial)  # ASHA stopped it after epoch 1  # type: ignore[arg-type]
    keeper.on_experiment_end([trial])  # type: ignore[list-item]
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint_1"]
    record = Ledger.load(experiment).trials["a"]
    assert (record.status, record.checkpoints) == ("stopped", 1)


def test_an_errored_trial_records_its_cause_and_a_full_disk_stops_the_sweep(
    experiment: Location, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(callback, "FLUSH_S", 0.0)
    keeper = _started(experiment)
    keeper.on_trial_error(0, [], FakeTrial("a", error=ValueError("bad lr")))  # type: ignore[arg-type]
    assert Ledger.load(experiment).trials["a"].error == "ValueError: bad lr"
    full = FakeTrial("b", error=OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(StorageFullError):
        keeper.on_trial_error(0, [], full)  # type: ignore[arg-type]
    assert "b" not in Ledger.load(experiment).trials, "not blamed on the trial"


def test_pending_trials_are_recorded_once_from_the_growing_trial_list(
    experiment: Location, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(callback, "FLUSH_S", 0.0)
    keeper = _started(experiment)
    trials = [FakeTrial("a")]
    keeper.on_step_end(0, trials)  # type: ignore[arg-type]
    trials.append(FakeTrial("b"))
    keeper.on_step_end(1, trials)  # type: ignore[arg-type]
    keeper.on_step_end(2, trials)  # type: ignore[arg-type]
    record = Ledger.load(experiment)
    assert {t: r.status for t, r in record.trials.items()} == {"a": "pending", "b": "pending"}
    added = [line for _, segment in EventLog.segments(experiment)
             for line in segment.read_text().splitlines() if '"add"' in line]
    assert len(added) == 2


def test_a_killed_driver_loses_only_its_unflushed_events(experiment: Location) -> None:
    keeper = _started(experiment)
    trial = FakeTrial("a")
    _report(keeper, trial, 1, 0.5)
    keeper.on_experiment_end([])  # flushed
    _report(keeper, trial, 2, 0.6)  # buffered when the driver is killed: no cleanup runs
    again = pickle.loads(pickle.dumps(keeper))
    again.setup()
    assert again.ledger.trials["a"].epochs == 1, "resume replays epoch 2 from the checkpoint"


def test_snapshots_grow_apart_as_the_record_grows(
    experiment: Location, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(callback, "SNAPSHOT_MIN_EVENTS", 10)
    saved: list[int] = []
    save = Ledger.save
    monkeypatch.setattr(Ledger, "save", lambda self, where: (
        saved.append(sum(len(t.history) for t in self.trials.values())), save(self, where))[1])
    keeper = _started(experiment, _spec(max_epochs=1000))
    trial = FakeTrial("a")
    for epoch in range(1, 1001):
        _report(keeper, trial, epoch, 0.5)
    # A snapshot once the events since the last reach half of those it holds: each holds
    # about 1.5 times the one before, so 1000 reports take a dozen, not 1000.
    assert 8 <= len(saved) <= 16, saved
    assert all(b >= 1.4 * a for a, b in itertools.pairwise(saved[2:])), saved
    keeper.on_experiment_end([trial])  # type: ignore[list-item]
    assert Ledger.load(experiment).trials["a"].epochs == 1000


def test_a_costly_snapshot_makes_the_next_age_based_one_wait(
    experiment: Location, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # At 10,000 trials a snapshot takes seconds: one a minute would take over the driver.
    clock = [1000.0]
    monkeypatch.setattr(callback.time, "monotonic", lambda: clock[0])
    saves: list[float] = []
    save = Ledger.save

    def slow_save(self: Ledger, where: Location) -> None:
        saves.append(clock[0])
        clock[0] += 2.0  # a snapshot that takes 2 s
        save(self, where)

    monkeypatch.setattr(Ledger, "save", slow_save)
    keeper = _started(experiment, _spec(max_epochs=1000))
    trial = FakeTrial("a")
    for epoch in range(1, 40):
        clock[0] += 10.0  # a report every 10 s: fewer events than a growth-based snapshot needs
        _report(keeper, trial, epoch, 0.5)
    # 2 s / SNAPSHOT_SHARE = 200 s apart, not SNAPSHOT_MAX_AGE_S = 60.
    gaps = [b - a for a, b in itertools.pairwise(saves)]
    assert gaps and all(gap >= 2.0 / callback.SNAPSHOT_SHARE for gap in gaps), gaps


def test_what_a_trial_ran_is_recorded_once_apart_from_its_metrics(
    experiment: Location, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(callback, "FLUSH_S", 0.0)
    keeper = _started(experiment)
    trial = FakeTrial("a", config={"trainer.precision": "16-mixed"})
    keeper.on_trial_start(0, [], trial)  # type: ignore[arg-type]
    ran = {"ran/precision": "16-mixed", "ran/device": "NVIDIA H100 80GB HBM3"}
    for epoch in (1, 2):
        keeper.on_trial_result(0, [], trial, {"epoch": epoch, "val/acc": 0.5, **ran})  # type: ignore[arg-type]
    keeper.on_step_end(0, [trial])  # type: ignore[arg-type]
    record = Ledger.load(experiment).trials["a"]
    assert record.ran == {"precision": "16-mixed", "device": "NVIDIA H100 80GB HBM3"}
    assert all("ran/precision" not in e.metrics for e in record.history)
    log = "".join(p.read_text() for p in Path(experiment.uri).rglob("*.jsonl"))
    assert log.count('"e":"ran"') == 1, "told once, not with every epoch"
    assert Ledger.load(experiment).rows()[0]["ran"]["precision"] == "16-mixed"


def test_an_inline_trials_checkpoint_is_the_one_tune_kept_in_its_directory(
        experiment: Location) -> None:
    from ray.train.constants import CHECKPOINT_DIR_NAME

    keeper = _started(experiment)
    trial = FakeTrial("t1")
    # Tune names the directory it persisted the report's checkpoint in; no Train run path.
    for epoch, name in ((1, "checkpoint_000000"), (2, None)):
        keeper.on_trial_result(0, [], trial, {  # type: ignore[arg-type]
            "epoch": epoch, "val/acc": 0.5, "time_this_iter_s": 1.0, CHECKPOINT_DIR_NAME: name})
    history = keeper.ledger.trials["t1"].history
    assert history[0].checkpoint == (experiment / "trial_t1/checkpoint_000000/checkpoint.ckpt").uri
    assert history[1].checkpoint is None
    assert all(CHECKPOINT_DIR_NAME not in e.metrics for e in history)
