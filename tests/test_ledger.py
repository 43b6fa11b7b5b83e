"""The leaderboard file: ranking, statuses, atomic round trip, and error descriptions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ray.exceptions import RayTaskError
from ray.train import WorkerGroupError

from tests.conftest import SweepWriter
from tuning.config.spec import load_spec
from tuning.errors import SweepError, describe_error
from tuning.record import EpochRecord, Ledger, TrialRecord
from tuning.record.layout import LEDGER_FILE
from tuning.record.location import Location


def _trial(trial_id: str, values: list[float], status: str = "completed") -> TrialRecord:
    history = [EpochRecord(i + 1, {"val/acc": v}) for i, v in enumerate(values)]
    return TrialRecord(trial_id, status=status, config={"module.lr": 0.1}, history=history)


def test_ranked_best_first_by_best_epoch_and_mode(write_sweep: SweepWriter) -> None:
    spec = load_spec(write_sweep())
    ledger = Ledger(spec, {t.trial_id: t for t in [
        _trial("a", [0.5, 0.7]), _trial("b", [0.9, 0.6], "stopped"), _trial("c", [], "pending"),
    ]})
    assert [t.trial_id for t in ledger.ranked()] == ["b", "a", "c"]
    assert ledger.trials["b"].best_epoch("val/acc", "max").epoch == 1  # type: ignore[union-attr]
    assert ledger.trials["a"].best_epoch("val/acc", "min").epoch == 1  # type: ignore[union-attr]
    row = ledger.trials["b"].to_dict("val/acc", "max")
    assert row == {"trial_id": "b", "status": "stopped", "epochs": 2, "value": 0.9,
                   "config": {"module.lr": 0.1}, "error": None, "checkpoints": 0,
                   "checkpoint_bytes": 0, "seconds": 0.0, "worker_seconds": 0.0, "ran": {},
                   "added_by": 0, "stopped_by": None}


def test_nan_values_never_rank_first(write_sweep: SweepWriter) -> None:
    spec = load_spec(write_sweep())
    ledger = Ledger(spec, {"nan": _trial("nan", [float("nan")]), "ok": _trial("ok", [0.1])})
    assert [t.trial_id for t in ledger.ranked()] == ["ok", "nan"]


def test_save_load_round_trip_leaves_no_temp_file(write_sweep: SweepWriter, tmp_path: Path):
    spec = load_spec(write_sweep())
    ledger = Ledger(spec, {"a": _trial("a", [0.5])})
    ledger.trials["a"].history[0].checkpoint = "/x/checkpoint.ckpt"
    experiment = tmp_path / "exp"
    ledger.save(Location.parse(experiment))
    ledger.save(Location.parse(experiment))
    files = [p.relative_to(experiment).as_posix() for p in experiment.rglob("*") if p.is_file()]
    assert files == [LEDGER_FILE]
    assert (experiment / LEDGER_FILE).stat().st_mode & 0o777 == 0o644
    loaded = Ledger.load(experiment)
    assert loaded.spec == spec
    assert loaded.trials["a"] == ledger.trials["a"]
    assert json.loads((experiment / LEDGER_FILE).read_text())["format"] == 2


def test_a_leaderboard_written_by_the_previous_format_still_loads(
    write_sweep: SweepWriter, tmp_path: Path,
) -> None:
    spec = load_spec(write_sweep())
    (tmp_path / LEDGER_FILE).parent.mkdir(parents=True)
    (tmp_path / LEDGER_FILE).write_text(json.dumps({  # as lightsweep wrote it before events
        "format": 1, "sweep": spec.model_dump(mode="json"),
        "trials": [{"trial_id": "a", "status": "completed", "config": {"module.lr": 0.1},
                    "history": [{"epoch": 1, "metrics": {"val/acc": 0.5}, "checkpoint": None,
                                 "seconds": 2.0, "reported_at": 1.0}],
                    "error": None, "checkpoints": 1, "checkpoint_bytes": 10, "orphan": False}],
    }, indent=1))
    ledger = Ledger.load(tmp_path)
    assert ledger.trials["a"].epochs == 1 and ledger.trials["a"].checkpoint_bytes == 10


def test_loading_a_directory_that_is_no_experiment(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match=r"not a lightsweep experiment .*runs/<name>"):
        Ledger.load(tmp_path)


def test_describe_error_reaches_the_users_exception() -> None:
    root = FloatingPointError("loss is nan at step 3")
    wrapped = WorkerGroupError("worker 0 failed", {0: root})
    assert describe_error(wrapped) == "FloatingPointError: loss is nan at step 3"
    task_error = RayTaskError("run_trial", "traceback...", wrapped)
    assert describe_error(task_error) == "FloatingPointError: loss is nan at step 3"
    assert describe_error(None) == "unknown error"


def test_describe_error_keeps_a_whole_message_on_one_line() -> None:
    error = RuntimeError("Task was killed: the node ran low on memory.\n\nFix: lower the batch.")
    assert describe_error(error) == ("RuntimeError: Task was killed: the node ran low on memory. "
                                     "Fix: lower the batch.")
    long = describe_error(ValueError("start " + "x" * 1000 + " end"))
    assert long.startswith("ValueError: start x") and long.endswith("x end")
    assert " ... " in long and len(long) < 450


def test_reconcile_keeps_unknown_finished_trials_as_orphans_and_drops_unknown_running_ones(
    write_sweep: SweepWriter,
) -> None:
    ledger = Ledger(load_spec(write_sweep()), {t.trial_id: t for t in [
        _trial("known", [0.5], "running"), _trial("done", [0.9]), _trial("lost", [0.4], "running"),
    ]})
    for event in ledger.reconcile({"known"}):
        ledger.apply(event)
    assert sorted(ledger.trials) == ["done", "known"]
    assert ledger.trials["done"].orphan and not ledger.trials["known"].orphan


def test_a_new_trial_of_an_orphans_configuration_adopts_its_result(
    write_sweep: SweepWriter,
) -> None:
    orphan = _trial("old", [0.5, 0.9])
    ledger = Ledger(load_spec(write_sweep()), {"old": orphan})
    for event in ledger.reconcile(set()):
        ledger.apply(event)
    assert ledger.adoption("new", {"module.lr": 0.2}) is None, "another configuration"
    adoption = ledger.adoption("new", {"module.lr": 0.1})
    assert adoption is not None
    ledger.apply(adoption)
    adopted = ledger.trials["new"]
    assert adopted is orphan and list(ledger.trials) == ["new"]
    assert (adopted.trial_id, adopted.orphan, adopted.epochs) == ("new", False, 2)
    assert ledger.adoption("newer", {"module.lr": 0.1}) is None, "adopted once"


def _timed(trial_id: str, seconds: list[float], status: str, world_size: float = 1.0) -> TrialRecord:
    history = [EpochRecord(i + 1, {"val/acc": 0.5, "world_size": world_size}, seconds=s)
               for i, s in enumerate(seconds)]
    return TrialRecord(trial_id, status=status, history=history)


def test_cost_counts_worker_seconds_and_what_early_stopping_saved(
    write_sweep: SweepWriter,
) -> None:
    spec = load_spec(write_sweep(scheduler={"max_epochs": 4, "grace_period": 1}))
    ledger = Ledger(spec, {
        # Start-up rides on each trial's first epoch; later epochs show what one more costs.
        "a": _timed("a", [20.0, 2.0, 2.0, 2.0], "completed"),
        "b": _timed("b", [20.0, 3.0], "stopped", world_size=2.0),  # 2 workers: 6 worker-s/epoch
        "c": _timed("c", [20.0], "stopped"),  # one epoch: the sweep's typical epoch cost
    })
    assert ledger.trials["b"].worker_seconds == pytest.approx(46.0)
    cost = ledger.cost()
    assert cost.epochs == 4 + 2 + 1
    assert cost.worker_seconds == pytest.approx(26.0 + 46.0 + 20.0)
    assert cost.epochs_saved == 2 + 3
    # b: 2 epochs x 6; c: 3 epochs x median(2, 6) of the trials' per-epoch costs
    assert cost.worker_seconds_saved == pytest.approx(2 * 6.0 + 3 * 6.0)
    row = next(r for r in ledger.rows() if r["trial_id"] == "b")
    assert (row["seconds"], row["worker_seconds"]) == (pytest.approx(23.0), pytest.approx(46.0))


def test_ledgers_written_before_timing_still_load(write_sweep: SweepWriter, tmp_path: Path):
    spec = load_spec(write_sweep())
    Ledger(spec, {"a": _trial("a", [0.5, 0.6])}).save(Location.parse(str(tmp_path)))
    data = json.loads((tmp_path / LEDGER_FILE).read_text())
    for trial in data["trials"]:
        for epoch in trial["history"]:
            del epoch["seconds"]
    (tmp_path / LEDGER_FILE).write_text(json.dumps(data))
    loaded = Ledger.load(str(tmp_path))
    assert loaded.trials["a"].seconds == 0.0 and loaded.cost().epochs == 2


def test_an_experiment_of_a_lightsweep_before_objects_and_configs_still_loads(
        tmp_path: Path) -> None:
    """Its sweep has no config, lightning_config, optimizer or lr_scheduler keys."""
    from tests.conftest import BASE_SWEEP
    from tuning.config.spec import SweepSpec

    spec = SweepSpec.model_validate(BASE_SWEEP)
    config = {"module.lr": 0.01, "datamodule.batch_size": 32, "seed": 3}
    Ledger(spec, {"t": TrialRecord("t", status="completed", config=config, history=[
        EpochRecord(1, {"val/acc": 0.5})])}).save(Location.parse(str(tmp_path)))
    path = tmp_path / LEDGER_FILE
    data = json.loads(path.read_text())
    for key in ("config", "lightning_config", "optimizer", "lr_scheduler"):
        del data["sweep"][key]
    path.write_text(json.dumps(data))
    loaded = Ledger.load(str(tmp_path))
    assert loaded.trials["t"].config == config
    assert loaded.spec.trial_args(config)["module"] == {
        "arch": "mlp", "input_shape": [8, 8], "width": 32, "depth": 1, "lr": 0.01}
    assert loaded.spec.trial_args(config)["datamodule"] == {"batch_size": 32}


def test_a_leaderboard_of_a_newer_format_is_refused_not_misread(tmp_path: Path) -> None:
    from tests.conftest import BASE_SWEEP
    from tuning.config.spec import SweepSpec

    Ledger(SweepSpec.model_validate(BASE_SWEEP)).save(Location.parse(str(tmp_path)))
    path = tmp_path / LEDGER_FILE
    path.write_text(path.read_text().replace('"format":2', '"format":3'))
    with pytest.raises(SweepError, match=r"format 3, newer than this lightsweep reads \(2\)"):
        Ledger.load(str(tmp_path))
