"""Folding the record's events into trial records."""

from __future__ import annotations

import json

from tuning.record import EpochRecord, TrialRecord, events


def _fold(*batch: events.Event) -> dict[str, TrialRecord]:
    trials: dict[str, TrialRecord] = {}
    for event in batch:
        # Every event survives its trip through the log unchanged.
        events.apply(trials, json.loads(json.dumps(event)))
    return trials


def test_a_trial_is_added_pending_then_runs_and_ends() -> None:
    trials = _fold(events.added("a", {"module.lr": 0.1}))
    assert (trials["a"].status, trials["a"].config) == ("pending", {"module.lr": 0.1})
    trials = _fold(events.added("a", {}), events.status("a", "running"),
                   events.status("a", "errored", "ValueError: bad"))
    assert (trials["a"].status, trials["a"].error) == ("errored", "ValueError: bad")


def test_an_epoch_reported_again_replaces_the_first_and_history_stays_in_order() -> None:
    trials = _fold(
        events.added("a", {}),
        *(events.epoch("a", EpochRecord(e, {"val/acc": e / 10})) for e in (1, 2, 3)),
        events.epoch("a", EpochRecord(2, {"val/acc": 0.9}, checkpoint="/c2")),
    )
    assert [(e.epoch, e.metrics["val/acc"]) for e in trials["a"].history] == [
        (1, 0.1), (2, 0.9), (3, 0.3)]
    assert trials["a"].history[1].checkpoint == "/c2"


def test_adoption_moves_the_orphans_record_to_the_new_trial() -> None:
    trials = _fold(events.added("old", {"x": 1}), events.epoch("old", EpochRecord(1, {"v": 1.0})),
                   events.status("old", "completed"), events.orphaned("old"),
                   events.adopted("new", "old"))
    assert list(trials) == ["new"]
    assert (trials["new"].trial_id, trials["new"].orphan, trials["new"].epochs) == ("new", False, 1)


def test_a_dropped_trial_is_gone_and_usage_is_measured() -> None:
    trials = _fold(events.added("a", {}), events.added("b", {}), events.dropped("a"),
                   events.usage("b", 2, 300))
    assert list(trials) == ["b"] and (trials["b"].checkpoints, trials["b"].checkpoint_bytes) == (2, 300)


def test_an_event_of_a_trial_never_added_creates_it_and_an_unknown_kind_is_skipped() -> None:
    trials = _fold(events.status("a", "running"), {"e": "from-a-newer-lightsweep", "id": "a"})
    assert trials["a"].status == "running"


def test_an_exploit_records_the_lineage_and_the_trial_trains_on_from_the_donors_epoch() -> None:
    exploit = {"generation": 1, "donor": "top", "epoch": 2, "checkpoint": "/exp/trial_a/pbt/001",
               "values": {"module.lr": 0.012}, "before": {"module.lr": 0.05}}
    trials = _fold(
        events.added("a", {"module.lr": 0.05, "seed": 3}),
        *(events.epoch("a", EpochRecord(e, {"val/acc": e / 10}, checkpoint=f"/c{e}"))
          for e in (1, 2, 3)),
        events.exploited("a", exploit, {"module.lr": 0.012, "seed": 3, "pbt": exploit}),
        events.epoch("a", EpochRecord(3, {"val/acc": 0.8}, checkpoint="/n3")),
    )
    record = trials["a"]
    assert [(e.epoch, e.checkpoint) for e in record.history] == [(1, None), (2, None), (3, "/n3")]
    assert record.lineage == [exploit]
    assert record.schedule() == [
        {"from_epoch": 1, "values": {"module.lr": 0.05, "seed": 3}},
        {"from_epoch": 3, "donor": "top", "values": {"module.lr": 0.012}},
    ]
    row = record.to_dict("val/acc", "max")
    assert row["config"] == {"module.lr": 0.012, "seed": 3}, "the lineage is not a value"
    assert row["schedule"] == record.schedule()
    assert TrialRecord.from_data(record.as_data()).lineage == [exploit]
