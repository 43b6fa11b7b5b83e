"""The record in storage: events folded over the snapshot, locally and in S3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BASE_SWEEP
from tuning.config.spec import SweepSpec
from tuning.record import (
    EpochRecord,
    EventLog,
    Ledger,
    TrialRecord,
    events,
    finished_trial,
    recorded_epochs,
)
from tuning.record.layout import EVENTS_DIR, LEDGER_FILE
from tuning.record.location import Location


@pytest.fixture(params=["local", "s3"])
def experiment(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    """An experiment directory on a local disk, or in an S3 bucket."""
    if request.param == "local":
        return Location.parse(tmp_path)
    return Location.parse(request.getfixturevalue("s3_bucket")) / "runs/exp"


def _started(experiment: Location) -> tuple[Ledger, EventLog]:
    ledger = Ledger(SweepSpec.model_validate(BASE_SWEEP))
    ledger.save(experiment)
    return ledger, EventLog(experiment)


def _log(ledger: Ledger, log: EventLog, *batch: events.Event) -> None:
    for event in batch:
        ledger.apply(event)
        log.add(event)
    log.flush()


def test_readers_fold_the_logged_events_over_the_snapshot(experiment: Location) -> None:
    ledger, log = _started(experiment)
    _log(ledger, log, events.added("a", {"module.lr": 0.1}), events.status("a", "running"))
    _log(ledger, log, events.epoch("a", EpochRecord(1, {"val/acc": 0.5})),
         events.epoch("a", EpochRecord(2, {"val/acc": 0.7})))
    loaded = Ledger.load(experiment)
    assert loaded.trials == ledger.trials
    assert loaded.logged == 2 and loaded.trials["a"].epochs == 2
    assert [seq for seq, _ in EventLog.segments(experiment)] == [1, 2]


def test_a_snapshot_includes_the_segments_it_folded_and_they_go(experiment: Location) -> None:
    ledger, log = _started(experiment)
    _log(ledger, log, events.added("a", {}), events.epoch("a", EpochRecord(1, {"val/acc": 0.5})))
    ledger.logged = log.last
    ledger.save(experiment)
    log.compact(ledger.logged)
    assert EventLog.segments(experiment) == []
    _log(ledger, log, events.status("a", "completed"))
    loaded = Ledger.load(experiment)
    assert loaded.trials["a"].status == "completed" and loaded.trials["a"].epochs == 1
    assert loaded.logged == 2


def test_segments_a_snapshot_already_includes_are_not_applied_twice(tmp_path: Path) -> None:
    experiment = Location.parse(tmp_path)
    ledger, log = _started(experiment)
    _log(ledger, log, events.added("a", {}), events.epoch("a", EpochRecord(1, {"x": 1.0},
                                                                          seconds=2.0)))
    ledger.logged = log.last
    ledger.save(experiment)  # the driver died before it removed the segment
    (tmp_path / EVENTS_DIR / "0000000001.jsonl").write_text(
        (tmp_path / EVENTS_DIR / "0000000001.jsonl").read_text().replace('"seconds":2.0',
                                                                          '"seconds":9.0'))
    assert Ledger.load(experiment).trials["a"].history[0].seconds == 2.0


def test_a_gap_before_the_first_segment_still_reads_what_is_there(tmp_path: Path) -> None:
    experiment = Location.parse(tmp_path)
    ledger, log = _started(experiment)
    _log(ledger, log, events.added("a", {}))
    _log(ledger, log, events.added("b", {}))
    (tmp_path / EVENTS_DIR / "0000000001.jsonl").unlink()
    assert list(Ledger.load(experiment).trials) == ["b"]


def test_the_log_is_due_only_once_its_oldest_event_waited(tmp_path: Path) -> None:
    log = EventLog(Location.parse(tmp_path))
    assert not log.due(0.0), "nothing buffered"
    log.add(events.added("a", {}))
    assert log.due(0.0) and not log.due(60.0)
    log.flush()
    assert not log.due(0.0) and log.last == 1
    log.flush()
    assert log.last == 1, "an empty flush writes nothing"


def test_the_snapshot_holds_no_temp_file_and_no_events(tmp_path: Path) -> None:
    experiment = Location.parse(tmp_path)
    ledger, log = _started(experiment)
    _log(ledger, log, events.added("a", {}))
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == [f"{EVENTS_DIR}/0000000001.jsonl", LEDGER_FILE]


def _sweep_of(experiment: Location, trials: int) -> tuple[Ledger, EventLog]:
    """A record of ``trials`` finished trials in its snapshot, and a log after it."""
    ledger, log = _started(experiment)
    for i in range(trials):
        for event in (events.added(f"t{i:03d}", {"module.lr": i / 1000}),
                      events.epoch(f"t{i:03d}", EpochRecord(1, {"val/acc": 0.5})),
                      events.status(f"t{i:03d}", "completed")):
            ledger.apply(event)
    ledger.save(experiment)
    return ledger, log


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The trial ids whose records get decoded from storage."""
    seen: list[str] = []
    from_data = TrialRecord.from_data.__func__  # type: ignore[attr-defined]

    def counted(cls: type[TrialRecord], data: dict[str, Any]) -> TrialRecord:
        seen.append(data["trial_id"])
        return from_data(cls, data)  # type: ignore[no-any-return]

    monkeypatch.setattr(TrialRecord, "from_data", classmethod(counted))
    return seen


def test_a_trials_look_up_decodes_its_own_record_alone(
    experiment: Location, decoded: list[str],
) -> None:
    ledger, log = _sweep_of(experiment, 300)
    _log(ledger, log, events.added("new", {"module.lr": 0.5}), events.status("new", "running"),
         events.epoch("new", EpochRecord(1, {"val/acc": 0.6})), events.status("t007", "stopped"))
    _log(ledger, log, events.epoch("new", EpochRecord(2, {"val/acc": 0.7})))
    assert recorded_epochs(experiment, "new") == 2
    assert finished_trial(experiment, "new", {"module.lr": 0.5}) is None, "still running"
    assert recorded_epochs(experiment, "t007") == 1
    record = finished_trial(experiment, "t007", {"module.lr": 0.007})
    assert record == ledger.trials["t007"] and record.status == "stopped"
    assert recorded_epochs(experiment, "unknown") == 0
    assert decoded == ["t007", "t007"], "only t007's record was in the snapshot; none other decoded"


def test_a_look_up_after_a_resume_made_orphans_finds_its_configurations_result(
    tmp_path: Path, decoded: list[str],
) -> None:
    experiment = Location.parse(tmp_path)
    ledger, log = _sweep_of(experiment, 3)
    _log(ledger, log, events.orphaned("t001"))
    assert finished_trial(experiment, "again", {"module.lr": 0.001}) == ledger.trials["t001"]
    ledger.logged = log.last
    ledger.save(experiment)  # the orphan in the snapshot now, not in an event
    assert finished_trial(experiment, "again", {"module.lr": 0.001}) == ledger.trials["t001"]
    _log(ledger, log, events.adopted("again", "t001"))
    assert recorded_epochs(experiment, "again") == 1
    assert finished_trial(experiment, "again", {"module.lr": 0.001}) == ledger.trials["again"]


def test_a_look_up_in_a_snapshot_of_an_older_lightsweep_reads_it_whole(tmp_path: Path) -> None:
    experiment = Location.parse(tmp_path)
    ledger, _ = _sweep_of(experiment, 3)
    older = {"format": 2, "sweep": ledger.spec.model_dump(mode="json"), "folded": 0,
             "trials": [t.as_data() for t in ledger.trials.values()]}  # its keys' order
    (tmp_path / LEDGER_FILE).write_text(json.dumps(older, indent=1))
    assert recorded_epochs(experiment, "t002") == 1
    assert finished_trial(experiment, "t002", {}) == ledger.trials["t002"]


def test_a_snapshot_encodes_only_the_records_changed_since_the_last(
    experiment: Location, monkeypatch: pytest.MonkeyPatch,
) -> None:
    ledger, log = _sweep_of(experiment, 50)
    _log(ledger, log, events.orphaned("t003"), events.added("again", {"module.lr": 0.003}))
    ledger.save(experiment)
    encoded: list[str] = []
    as_data = TrialRecord.as_data

    def counted(record: TrialRecord) -> dict[str, Any]:
        encoded.append(record.trial_id)
        return as_data(record)

    monkeypatch.setattr(TrialRecord, "as_data", counted)
    _log(ledger, log, events.epoch("t010", EpochRecord(2, {"val/acc": 0.9})),
         events.adopted("again", "t003"), events.dropped("t020"))
    ledger.logged = log.last
    ledger.save(experiment)
    assert sorted(encoded) == ["again", "t010"]
    loaded = Ledger.load(experiment)
    assert loaded.trials == ledger.trials and "t003" not in loaded.trials
    assert loaded.trials["t010"].epochs == 2 and loaded.trials["again"].epochs == 1
