"""Real sweeps on an embedded Ray: Optuna proposes, Ray Train runs Lightning DDP, ASHA stops.

Each test is bounded in time; together they take a few minutes on 2 CPUs.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lightning_modules import Classifier
from tests.conftest import REPO, SweepWriter
from tests.processes import driver_env
from tests.scoring import validate
from tests.wandb_files import offline_runs, read_run
from tuning import fetch_best, launch, leaderboard
from tuning.cli import main
from tuning.config.seeding import trial_seed
from tuning.record import Ledger

pytestmark = [pytest.mark.ray]

MAX_EPOCHS = 4


def _six_digits_trials(root: Path, name: str, runner: str = "train") -> Path:
    """Six digits trials over a wide learning-rate range, so that some are clearly weak."""
    sweep = root / "sweep.yaml"
    sweep.write_text(
        "module: lightning_modules.classifier:Classifier\n"
        "datamodule: lightning_modules.datamodules:DigitsDataModule\n"
        "module_args: {arch: mlp, input_shape: [8, 8], width: 32, depth: 1}\n"
        "space:\n"
        "  module.lr: {loguniform: [1e-4, 3e-1]}\n"
        "  datamodule.batch_size: {choice: [32, 64]}\n"
        "metric: val/acc\nmode: max\n"
        f"search: {{num_samples: 6, seed: 0}}\n"
        f"scheduler: {{max_epochs: {MAX_EPOCHS}, grace_period: 1, reduction_factor: 2}}\n"
        f"resources: {{trial_runner: {runner}}}\n"
    )
    return Path(launch(sweep, storage=str(root / "runs"), name=name).path.uri)


@pytest.fixture(scope="module")
def asha_sweep(ray_session, actors_before_asha: set[str], tmp_path_factory) -> Path:
    """Six trials, each a Ray Train run."""
    return _six_digits_trials(tmp_path_factory.mktemp("asha"), "asha")


@pytest.fixture(scope="module")
def actors_before_asha(ray_session) -> set[str]:
    """The actors that earlier sweeps of the same Ray session started (the state API lists
    ended actors too), taken before ``asha_sweep`` runs."""
    return set(_actors())


def _actors() -> dict[str, str]:
    """Every actor of the Ray session, ended ones too: id -> class name."""
    from ray.util.state import list_actors

    return {a.actor_id: a.class_name
            for a in list_actors(limit=10_000, raise_on_missing_output=False)}


@pytest.mark.timeout(600)
def test_asha_stops_weak_trials_early(asha_sweep: Path) -> None:
    rows = leaderboard(asha_sweep)
    assert len(rows) == 6
    assert {r["status"] for r in rows} <= {"completed", "stopped"}
    stopped = [r for r in rows if r["status"] == "stopped"]
    completed = [r for r in rows if r["status"] == "completed"]
    assert stopped, "ASHA stopped no trial"
    assert all(r["epochs"] < MAX_EPOCHS for r in stopped)
    assert completed and all(r["epochs"] == MAX_EPOCHS for r in completed)
    values = [r["value"] for r in rows]
    assert values == sorted(values, reverse=True)
    # Optuna's proposals cover the space and are distinct.
    lrs = [r["config"]["module.lr"] for r in rows]
    assert len(set(lrs)) == 6 and all(1e-4 <= lr <= 3e-1 for lr in lrs)
    # Each trial seeded apart, from the sweep's seed (0) and its number, as recorded.
    assert sorted(r["config"]["seed"] for r in rows) == sorted(trial_seed(0, n) for n in range(6))
    # What each trial ran on, as its worker said: Lightning's default precision, on CPU, each
    # trial a Ray Train run.
    assert all(r["ran"] == {"precision": "32-true", "device": "cpu", "runner": "train"}
               for r in rows)
    # Every epoch of a completed trial reached Tune, the last one too, and the leaderboard.
    ledger = Ledger.load(asha_sweep)
    for row in completed:
        assert [e.epoch for e in ledger.trials[row["trial_id"]].history] == [1, 2, 3, 4]
        with open(asha_sweep / f"trial_{row['trial_id']}" / "progress.csv") as f:
            assert [int(float(r["epoch"])) for r in csv.DictReader(f)] == [1, 2, 3, 4]


@pytest.mark.timeout(600)
def test_trials_run_trains_controller_in_reused_processes_and_leave_no_placement_group(
        asha_sweep: Path, actors_before_asha: set[str]) -> None:
    from ray.util import placement_group_table
    from ray.util.state import list_actors

    # tuning._internals.trainer.LayeredTorchTrainer: Train's control loop ran in each trial's process,
    # so Ray started no controller actor for any of the six runs.
    classes = {a.class_name for a in list_actors(limit=10_000, raise_on_missing_output=False)}
    assert "TrainController" not in classes
    # Reports went to Tune in the trial's own thread (tuning._internals.trainer.ReportToTune): no queue
    # actor per trial; and trials went on in the processes of ended ones, those ASHA stopped
    # included (their runs ended in place first): 6 trials, 2 at a time, in fewer processes.
    assert "_QueueActor" not in classes
    # A local Ray has no autoscaler: Train asked none (tuning._internals.autoscaler).
    assert "_AutoscalingCoordinatorActor" not in classes
    pids = {json.loads(line)["pid"] for trial in asha_sweep.glob("trial_*")
            for line in (trial / "result.json").read_text().splitlines()}
    assert len(pids) < 6, pids
    started = [name for actor_id, name in _actors().items() if actor_id not in actors_before_asha]
    # No placement-group cleaner (a process each): the sweep's driver removes the group of a
    # trial process that died (tuning.driver.placement_groups).
    assert "PlacementGroupCleaner" not in started
    # One synchronization actor per trial process, renewed for each of its runs, not one per run
    # (tuning._internals.controller).
    assert "SynchronizationActor" not in started
    assert 1 <= started.count("RenewableSynchronizationActor") <= len(pids) < 6
    # Every trial's placement group is gone, those of the trials ASHA stopped too.
    deadline = time.monotonic() + 30
    while True:
        states = [pg["state"] for pg in placement_group_table().values()]
        if set(states) == {"REMOVED"} or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert states and set(states) == {"REMOVED"}


@pytest.mark.timeout(600)  # the first test to use asha_sweep pays for it
def test_num_to_keep_bounds_checkpoint_disk_use_and_the_leaderboard_reports_it(
    asha_sweep: Path,
) -> None:
    num_to_keep = Ledger.load(asha_sweep).spec.checkpoints.num_to_keep
    for row in leaderboard(asha_sweep):
        run = asha_sweep / f"trial_{row['trial_id']}" / "train"
        kept = [d for d in run.glob("checkpoint_*") if d.is_dir() and any(d.iterdir())]
        size = sum(f.stat().st_size for d in kept for f in d.rglob("*") if f.is_file())
        assert (row["checkpoints"], row["checkpoint_bytes"]) == (len(kept), size)
        # The best num_to_keep by the metric, plus the latest when it is not among them.
        assert 1 <= len(kept) <= min(row["epochs"], num_to_keep + 1)
        if row["status"] == "completed":
            assert len(kept) < row["epochs"], "no checkpoint was ever removed"
    best = fetch_best(asha_sweep)
    assert Path(best.checkpoint).is_file(), "the best epoch's checkpoint was removed"


@pytest.mark.timeout(120)
def test_best_model_reproduces_its_logged_metric(asha_sweep: Path) -> None:
    best = fetch_best(asha_sweep)
    assert best.metric == "val/acc" and best.value > 0.8
    assert best.checkpoint_epoch == best.epoch
    logged = next(e for e in Ledger.load(asha_sweep).trials[best.trial_id].history
                  if e.epoch == best.checkpoint_epoch).metrics["val/acc"]
    metrics = validate(best.load_model(), best.load_datamodule())
    assert metrics["val/acc"] == pytest.approx(logged, abs=1e-4)


@pytest.mark.timeout(120)
def test_best_json_names_a_checkpoint_that_loads(asha_sweep: Path, capsys) -> None:
    assert main(["best", str(asha_sweep), "--json"]) == 0
    best = json.loads(capsys.readouterr().out)
    assert set(best) >= {"trial_id", "config", "metric", "value", "epoch", "checkpoint"}
    assert best["checkpoint"].endswith(".ckpt")
    model = Classifier.load_from_checkpoint(best["checkpoint"], map_location="cpu")
    assert model.hparams.lr == pytest.approx(best["config"]["module.lr"])

    assert main(["leaderboard", str(asha_sweep), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["trial_id"] == best["trial_id"]
    assert set(rows[0]) == {"trial_id", "status", "epochs", "value", "config", "error",
                            "checkpoints", "checkpoint_bytes", "seconds", "worker_seconds", "ran",
                            "added_by", "stopped_by"}


@pytest.mark.timeout(120)
def test_cost_shows_what_each_trial_spent_and_what_early_stopping_saved(
    asha_sweep: Path, capsys
) -> None:
    ledger = Ledger.load(asha_sweep)
    for trial in ledger.trials.values():
        # Every epoch timed; the first carries the trial's start-up (seconds of Ray Train).
        assert all(e.seconds is not None and e.seconds > 0 for e in trial.history)
        later = [e.seconds or 0.0 for e in trial.history[1:]]
        assert (trial.history[0].seconds or 0.0) > max(later, default=0.0)
    cost = ledger.cost()
    stopped = [t for t in ledger.trials.values() if t.status == "stopped"]
    assert cost.epochs == sum(t.epochs for t in ledger.trials.values())
    assert cost.epochs_saved == sum(MAX_EPOCHS - t.epochs for t in stopped) > 0
    assert 0 < cost.worker_seconds_saved < cost.worker_seconds
    assert main(["leaderboard", str(asha_sweep)]) == 0
    out = capsys.readouterr().out
    assert "worker-s" in out.splitlines()[0]
    assert f"cost: {cost.epochs} epochs" in out and f"saved {cost.epochs_saved} epochs" in out


@pytest.mark.timeout(300)
def test_warm_start_continues_the_earlier_sweeps_study(asha_sweep: Path, tmp_path: Path) -> None:
    earlier = Ledger.load(asha_sweep)
    ended = [t for t in earlier.trials.values() if t.status in ("completed", "stopped")]
    outcome = launch(asha_sweep.parent.parent / "sweep.yaml", num_samples=2, max_epochs=2,
                     storage=str(tmp_path), name="warm", warm_start=asha_sweep, wandb=False)
    rows = leaderboard(outcome.path)
    assert len(rows) == 2
    # The new trials are Optuna's trials 6 and 7: the study held the earlier sweep's six first.
    assert sorted(r["config"]["seed"] for r in rows) == sorted(
        trial_seed(0, n) for n in range(len(ended), len(ended) + 2))
    earlier_lrs = {t.config["module.lr"] for t in ended}
    assert not earlier_lrs & {r["config"]["module.lr"] for r in rows}


@pytest.mark.oldest
@pytest.mark.timeout(400)
def test_trial_with_two_ddp_workers(ray_session, write_sweep: SweepWriter, tmp_path: Path) -> None:
    sweep = write_sweep(
        space={"module.lr": {"loguniform": [0.02, 0.05]}, "datamodule.batch_size": 64},
        search={"num_samples": 1, "seed": 0},
        scheduler={"max_epochs": 2, "grace_period": 1},
        resources={"workers_per_trial": 2},
        wandb={"enabled": True},  # read below: one run for the two workers
    )
    path = launch(sweep, storage=str(tmp_path / "runs"), name="ddp").path
    [row] = leaderboard(path)
    assert (row["status"], row["epochs"]) == ("completed", 2)
    history = Ledger.load(path).trials[row["trial_id"]].history
    assert all(e.metrics["world_size"] == 2 for e in history)
    # Global batch 64 = 32 per worker: each rank takes 539 of the 1078 training samples in
    # ceil(539 / 32) = 17 steps an epoch, as many as one process would at batch 64.
    assert history[-1].metrics["step"] == 2 * 17
    # Rank 0 alone logs to W&B: one run for the trial's two workers.
    assert [r.name for r in offline_runs(Path(path.uri))] == [row["trial_id"]]
    best = fetch_best(path)
    metrics = validate(best.load_model(), best.load_datamodule())
    # DDP pads the validation shards; a single process sees each sample once.
    assert metrics["val/acc"] == pytest.approx(best.value, abs=0.02)


@pytest.mark.timeout(400)
def test_pytorch_lightning_user_module_tunes_unchanged(tmp_path: Path) -> None:
    """A user project on the old namespace, launched from its own directory by the CLI."""
    project = REPO / "tests" / "legacy_project"
    lightsweep = Path(sys.executable).parent / "lightsweep"  # the installed console script
    result = subprocess.run(
        [str(lightsweep), "launch", "sweep.yaml", "--storage", str(tmp_path), "--name", "legacy"],
        cwd=project, env=driver_env(), capture_output=True, text=True, timeout=380,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = leaderboard(tmp_path / "legacy")
    assert [r["status"] for r in rows] == ["completed"]
    assert rows[0]["value"] > 0.5
    assert "best trial" in result.stdout


def _exploding_sweep(write_sweep: SweepWriter, runner: str = "train") -> Path:
    """Two trials, one at a time, both of which raise in their first training step."""
    return write_sweep(
        module="tests.user_modules:Exploding",
        space={"module.lr": 0.1},
        search={"num_samples": 2, "seed": 0},
        scheduler={"max_epochs": 2, "grace_period": 1},
        resources={"max_concurrent": 1, "trial_runner": runner},
    )


@pytest.mark.timeout(300)
@pytest.mark.parametrize("runner", ["train", "inline"])
def test_errored_trials_show_their_cause_and_the_sweep_goes_on(
    ray_session, write_sweep: SweepWriter, tmp_path: Path, runner: str
) -> None:
    # Inline, Tune retries a failed trial (--max-retries 1 here), which would run the user's
    # code again: the retry fails at once with the first attempt's error instead.
    code = main(["launch", str(_exploding_sweep(write_sweep, runner)), "--storage", str(tmp_path),
                 "--name", "boom", "--max-retries", "1"])
    assert code == 1, "a sweep whose every trial failed has no best trial"
    rows = leaderboard(tmp_path / "boom")
    assert [r["status"] for r in rows] == ["errored", "errored"]
    assert all(r["error"] == "FloatingPointError: loss is nan (lr=0.100)" for r in rows)
    if runner == "inline":  # Tune's own log of each trial's failures: the retry's is the note
        for row in rows:
            failures = (tmp_path / "boom" / f"trial_{row['trial_id']}" / "error.txt").read_text()
            assert failures.count("Failure #") == 2
            assert "raised it in an earlier attempt" in failures.split("Failure # 2")[1]
    # Nothing searched: the two trials are repeats that differ in their seed alone.
    assert sorted(r["config"]["seed"] for r in rows) == sorted(trial_seed(0, n) for n in (0, 1))


@pytest.mark.timeout(300)
def test_out_of_memory_trials_error_and_optuna_hears_they_failed(
    ray_session, write_sweep: SweepWriter, tmp_path: Path
) -> None:
    from tuning.driver.searcher import TruthfulOptunaSearch

    sweep = write_sweep(
        module="tests.user_modules:OutOfMemoryWhenWide",
        module_args={"arch": "mlp", "input_shape": [8, 8], "depth": 1},
        space={"module.width": {"choice": [32, 128]}},
        search={"num_samples": 2, "seed": 0},  # seed 0 proposes both widths
        scheduler={"max_epochs": 2, "grace_period": 2},
    )
    path = launch(sweep, storage=str(tmp_path), name="oom").path
    rows = leaderboard(path)
    assert {r["config"]["module.width"] for r in rows} == {32, 128}, "seeded: both widths"
    searcher = TruthfulOptunaSearch(max_epochs=2)
    searcher.restore_from_dir(str(path))
    for row in rows:
        state = searcher.study.trials[searcher.optuna_trial(row["trial_id"]).number].state.name
        if row["config"]["module.width"] == 128:
            assert row["status"] == "errored" and state == "FAIL"
            assert row["error"] == ("OutOfMemoryError: CUDA out of memory. Tried to allocate "
                                    "2.00 GiB (width=128)")
        else:
            assert row["status"] == "completed" and state == "COMPLETE"


@pytest.mark.timeout(300)
def test_fail_fast_stops_the_sweep_at_the_first_error(
    ray_session, write_sweep: SweepWriter, tmp_path: Path
) -> None:
    outcome = launch(_exploding_sweep(write_sweep), storage=str(tmp_path), name="fast",
                     fail_fast=True)
    assert (outcome.errored, outcome.finished, outcome.unfinished) == (1, 0, 1)


@pytest.mark.timeout(60)
def test_optuna_hears_stopped_trials_as_pruned(asha_sweep: Path) -> None:
    from tuning.driver.searcher import TruthfulOptunaSearch

    searcher = TruthfulOptunaSearch(max_epochs=MAX_EPOCHS)
    searcher.restore_from_dir(str(asha_sweep))  # the state Tune saved at the end of the sweep
    study_trials = searcher.study.trials
    expected = {"completed": "COMPLETE", "stopped": "PRUNED"}
    for row in leaderboard(asha_sweep):
        trial = study_trials[searcher.optuna_trial(row["trial_id"]).number]
        assert trial.state.name == expected[row["status"]], row
        assert sorted(trial.intermediate_values) == list(range(1, row["epochs"] + 1))


@pytest.mark.timeout(120)
def test_each_trial_is_one_wandb_run_of_the_sweeps_group(asha_sweep: Path) -> None:
    # No W&B key here: offline runs under the experiment, what `wandb sync` uploads.
    ledger = Ledger.load(asha_sweep)
    runs = offline_runs(asha_sweep)
    assert sorted(r.name for r in runs) == sorted(ledger.trials)
    for run in runs:
        trial = ledger.trials[run.name]
        assert (run.project, run.group) == ("lightsweep", "asha")
        assert run.config["module.lr"] == pytest.approx(trial.config["module.lr"])
        assert run.config["seed"] == trial.config["seed"]
        logged = [row["val/acc"] for row in run.history if "val/acc" in row]
        recorded = [e.metrics["val/acc"] for e in trial.history]
        if trial.status == "completed":
            assert logged == pytest.approx(recorded)
            assert run.config["lr"] == pytest.approx(trial.config["module.lr"])  # the hparams
        else:
            # Ended by ASHA without a finish: W&B may have lost its last rows (those of the
            # quarter second before), or hold an epoch trained after the result ASHA stopped
            # the trial on.
            n = min(len(logged), len(recorded))
            assert logged[:n] == pytest.approx(recorded[:n])


@pytest.mark.timeout(60)
def test_tensorboard_shows_every_trials_metric_per_epoch(asha_sweep: Path) -> None:
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    # What `tensorboard --logdir EXPERIMENT_DIR` loads: a run per trial directory.
    board = EventMultiplexer().AddRunsFromDirectory(str(asha_sweep))
    board.Reload()
    ledger = Ledger.load(asha_sweep)
    assert sorted(board.Runs()) == sorted(f"trial_{t}" for t in ledger.trials)
    for trial_id, trial in ledger.trials.items():
        scalars = board.Scalars(f"trial_{trial_id}", "ray/tune/val/acc")
        assert [s.step for s in scalars] == [e.epoch for e in trial.history]
        assert [s.value for s in scalars] == pytest.approx(
            [e.metrics["val/acc"] for e in trial.history])


@pytest.mark.timeout(60)
def test_optuna_dashboards_study_file_holds_every_trial(asha_sweep: Path) -> None:
    import optuna

    from tuning.record.study_file import STUDY_FILE, STUDY_NAME, TRIAL_ID_ATTR

    study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{asha_sweep / STUDY_FILE}")
    states = {t.user_attrs[TRIAL_ID_ATTR]: t.state.name for t in study.trials}
    expected = {"completed": "COMPLETE", "stopped": "PRUNED"}
    assert states == {r["trial_id"]: expected[r["status"]] for r in leaderboard(asha_sweep)}
    # A completed trial's value is its last epoch's, as Optuna's own pruning callbacks tell it.
    finals = [t.history[-1].metrics["val/acc"] for t in Ledger.load(asha_sweep).trials.values()
              if t.status == "completed"]
    assert study.best_value == pytest.approx(max(finals))


@pytest.mark.timeout(400)
def test_sweep_file_callbacks_and_trainer_features_reach_the_trial(
    ray_session, write_sweep: SweepWriter, tmp_path: Path
) -> None:
    sweep = write_sweep(
        space={"module.lr": 0.05, "datamodule.batch_size": 64},
        search={"num_samples": 1, "seed": 0},
        scheduler={"max_epochs": 4, "grace_period": 1},
        trainer_args={"accumulate_grad_batches": 2, "gradient_clip_val": 0.5,
                      "deterministic": True, "profiler": "simple"},
        callbacks=[
            # A bar no epoch clears: the first epoch sets it, the second misses it, and stops.
            {"EarlyStopping": {"monitor": "val/acc", "mode": "max", "patience": 1,
                               "min_delta": 1.0}},
            {"ModelCheckpoint": {"monitor": "val/acc", "mode": "max", "save_top_k": 1}},
            {"LearningRateMonitor": {"logging_interval": "epoch"}},
            {"tests.user_modules:EpochCounter": {"start": 10}},
        ],
        wandb={"enabled": True},  # the LR monitor's logger, read below
    )
    path = Path(launch(sweep, storage=str(tmp_path / "runs"), name="features").path.uri)
    [row] = leaderboard(path)
    assert row["epochs"] == 2
    trial_dir = path / f"trial_{row['trial_id']}"
    last = Ledger.load(path).trials[row["trial_id"]].history[-1].metrics
    # 17 batches of 64 an epoch, one optimizer step per two (and one for the odd last batch).
    assert last["step"] == 2 * 9
    assert last["user/epochs_counted"] == 12  # the user's own callback, with its argument
    assert len(list((trial_dir / "lightning_checkpoints").glob("*.ckpt"))) == 1
    assert "Profiler Report" in (trial_dir / "profiler" / "fit-rank0.txt").read_text()
    [run] = offline_runs(path)
    assert any("lr-AdamW" in row for row in run.history)


@pytest.mark.timeout(300)
def test_smoke_runs_the_sweep_file_end_to_end_on_a_few_batches_and_the_driver_never_imports_torch(
    write_sweep: SweepWriter, tmp_path: Path
) -> None:
    """Launched in a process of its own, as a user's: the driver holds the sweep to its end, and
    0.4 GB of torch and Lightning it never uses would stay with it. The user's classes are
    checked in a process of their own; Tune's TensorBoard logger gets tensorboardX without torch
    (tuning/driver/imports.py); the trials' processes import what their fits need."""
    sweep = write_sweep(search={"num_samples": 20, "seed": 0},
                        scheduler={"max_epochs": 30, "grace_period": 5},
                        # needs a logger: --smoke keeps a do-nothing W&B one
                        callbacks=[{"LearningRateMonitor": None}], wandb={"enabled": True})
    script = (
        "import sys\n"
        "from tuning import launch\n"
        f"outcome = launch({str(sweep)!r}, storage={str(tmp_path)!r}, smoke=True)\n"
        "print('outcome', outcome.path.uri, outcome.finished, outcome.errored)\n"
        "print('imported', sorted({m.split('.')[0] for m in sys.modules} & "
        "{'torch', 'lightning', 'pytorch_lightning', 'lightning_modules'}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=driver_env(),
                            capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, result.stderr[-3000:]
    [outcome] = [line.split()[1:] for line in result.stdout.splitlines()
                 if line.startswith("outcome ")]
    assert "imported []" in result.stdout, result.stdout[-2000:]
    path = Path(outcome[0])
    assert path.name.startswith("smoke-sweep-")
    assert (outcome[1], outcome[2]) == ("2", "0")
    ledger = Ledger.load(path)
    for trial in ledger.trials.values():
        assert [e.metrics["step"] for e in trial.history][:1] == [4]  # 4 batches an epoch
        assert 1 <= trial.epochs <= 2
    assert not (path / "wandb").exists()
    assert fetch_best(path).load_model() is not None
    # TensorBoard's event files are written all the same.
    assert list(path.glob("trial_*/events.out.tfevents.*"))


@pytest.mark.timeout(120)
def test_report_of_a_real_sweep_carries_every_trial(asha_sweep: Path, tmp_path: Path) -> None:
    assert main(["report", str(asha_sweep), "--out", str(tmp_path / "report")]) == 0
    page = (tmp_path / "report" / "index.html").read_text()
    for row in leaderboard(asha_sweep):
        assert f"<td>{row['trial_id']}</td>" in page
    assert all((tmp_path / "report" / f).stat().st_size > 10_000 for f in (
        "learning_curves.png", "parallel_coordinates.png", "importances.png", "epochs.png"))


@pytest.fixture(scope="module")
def inline_sweep(ray_session, tmp_path_factory) -> Path:
    """``asha_sweep``'s six trials, fitted inline: in Tune's reused trial processes."""
    return _six_digits_trials(tmp_path_factory.mktemp("inline"), "inline", runner="inline")


@pytest.mark.timeout(300)
def test_inline_trials_fit_in_reused_processes_with_a_train_trials_record(
        inline_sweep: Path) -> None:
    rows = leaderboard(inline_sweep)
    assert len(rows) == 6 and {r["status"] for r in rows} <= {"completed", "stopped"}
    stopped = [r for r in rows if r["status"] == "stopped"]
    assert stopped and all(r["epochs"] < MAX_EPOCHS for r in stopped)
    assert all(r["ran"] == {"precision": "32-true", "device": "cpu", "runner": "inline"}
               for r in rows)
    # Two trials at a time, each later one in a process an ended trial left: at most two ever.
    pids = set()
    for row in rows:
        trial = inline_sweep / f"trial_{row['trial_id']}"
        results = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
        assert [r["epoch"] for r in results] == list(range(1, row["epochs"] + 1))
        pids |= {r["pid"] for r in results}
        # Tune keeps the checkpoints, in the trial's directory, as many as a Train run would.
        kept = [d for d in trial.glob("checkpoint_*") if any(d.iterdir())]
        assert row["checkpoints"] == len(kept) >= 1
        assert len(kept) <= Ledger.load(inline_sweep).spec.checkpoints.num_to_keep + 1
        assert not (trial / "train").exists(), "no Train run"
    assert len(pids) <= 2, pids
    best = fetch_best(inline_sweep)
    logged = next(e for e in Ledger.load(inline_sweep).trials[best.trial_id].history
                  if e.epoch == best.checkpoint_epoch).metrics["val/acc"]
    assert Path(best.checkpoint).parent.parent.name == f"trial_{best.trial_id}"
    metrics = validate(best.load_model(), best.load_datamodule())
    assert metrics["val/acc"] == pytest.approx(logged, abs=1e-4)


@pytest.mark.timeout(120)
def test_inline_trials_sharing_a_process_are_each_one_wandb_run(inline_sweep: Path) -> None:
    ledger = Ledger.load(inline_sweep)
    # One run per trial, named by it: "<experiment>-<trial id>".
    runs = {d.name.rsplit("-", 1)[-1]: d for d in (inline_sweep / "wandb").glob("offline-run-*")}
    assert sorted(runs) == sorted(ledger.trials)
    for trial_id, trial in ledger.trials.items():
        if trial.status != "completed":
            # Stopped by ASHA without a finish: when the sweep ends Tune ends the process at once,
            # and W&B may not have written the run yet (as a Train trial's killed worker).
            continue
        # A completed trial finished its run before the next trial in its process began its own.
        [file] = runs[trial_id].glob("run-*.wandb")
        run = read_run(file)
        assert run.name == trial_id and run.config["seed"] == trial.config["seed"]
        logged = [row["val/acc"] for row in run.history if "val/acc" in row]
        recorded = [e.metrics["val/acc"] for e in trial.history]
        # Every epoch's row, the last included: Tune stops a trial at max_epochs too, in the
        # middle of that epoch's end, which the fit now finishes (tuning.trial.session).
        assert logged == pytest.approx(recorded)
