"""The record in storage: events folded over the snapshot, locally and in S3."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import BASE_SWEEP
from tuning.config.spec import SweepSpec
from tuning.record import EpochRecord, EventLog, Ledger, events
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
