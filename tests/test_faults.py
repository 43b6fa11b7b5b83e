"""Faults injected into real sweeps: each test kills or breaks something and counts what survived.

The tests start and stop only Ray processes they own: the workers of their own trials (found
through Ray's State API) and drivers they started themselves.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pytest

from tests.conftest import REPO, LocalCluster, SweepWriter
from tests.processes import end_session, finish, start_driver, wait_for
from tests.wandb_files import read_run
from tuning import fetch_best, launch, leaderboard
from tuning.cli import main
from tuning.config.seeding import trial_seed
from tuning.errors import REQUEUE_EXIT
from tuning.record import Ledger
from tuning.record.layout import CHECKPOINT_SNAPSHOT, LEASE_FILE, LEDGER_FILE, TRAIN_RUN_NAME
from tuning.record.location import Location
from tuning.record.study_file import STUDY_FILE, STUDY_NAME

pytestmark = [pytest.mark.ray]

MNIST1D_SWEEP = (
    "module: lightning_modules.classifier:Classifier\n"
    "datamodule: lightning_modules.datamodules:MNIST1DDataModule\n"
    "module_args: {{arch: cnn1d, input_shape: [40], width: 16, depth: 2}}\n"
    "datamodule_args: {{data_dir: {data_dir}}}\n"
    "space:\n"
    "  module.lr: {{loguniform: [3e-3, 3e-2]}}\n"
    "  datamodule.batch_size: 32\n"
    "metric: val/acc\nmode: max\n"
    "search: {{num_samples: {samples}, seed: 0}}\n"
    "scheduler: {{max_epochs: {epochs}, grace_period: {epochs}}}\n"
    "wandb: {{enabled: {wandb}}}\n"
)


SweepFile = Callable[..., Path]


@pytest.fixture
def write_mnist1d_sweep(tmp_path: Path, mnist1d_dir: Path) -> SweepFile:
    """Writes the sweep file; W&B (2.5 CPU-seconds a trial) only where the test looks at it."""

    def write(samples: int, epochs: int, wandb: bool = False) -> Path:
        path = tmp_path / "sweep.yaml"
        path.write_text(MNIST1D_SWEEP.format(data_dir=mnist1d_dir, samples=samples,
                                             epochs=epochs, wandb=str(wandb).lower()))
        return path

    return write


@dataclass
class Progress:
    """What the driver's console says of the trials: those started, each one's last epoch,
    and those that ended."""

    started: set[str] = field(default_factory=set)
    reported: dict[str, int] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)


def _progress(log: Path) -> Progress:
    progress = Progress()
    for line in log.read_text(errors="replace").splitlines() if log.is_file() else []:
        if found := re.search(r" trial (\w+) epoch (\d+)/", line):
            progress.reported[found[1]] = int(found[2])
        elif found := re.search(r" trial (\w+) (completed|stopped|errored)", line):
            progress.ended.add(found[1])
        elif found := re.search(r" trial (\w+) started: ", line):
            progress.started.add(found[1])
    return progress


def _ledger(path: Path | Location) -> Ledger | None:
    return Ledger.load(path) if (Location.parse(path) / LEDGER_FILE).is_file() else None


def _checkpoint_dirs(experiment: Location, trial_id: str) -> list[str]:
    files = (experiment / f"trial_{trial_id}/train").files()
    return sorted({f.split("/")[0] for f, _ in files if f.startswith("checkpoint_") and "/" in f})


def _tune_epochs(trial_dir: Path | Location) -> list[int]:
    """The epochs of every result Tune received for a trial, in order (its progress.csv)."""
    text = (Location.parse(trial_dir) / "progress.csv").read_text()
    return [int(float(row["epoch"])) for row in csv.DictReader(io.StringIO(text))]


@pytest.mark.timeout(420)
def test_killed_worker_restarts_from_last_checkpoint(
        ray_session, write_mnist1d_sweep: SweepFile, tmp_path: Path) -> None:
    from ray.util.state import list_actors

    # Enough epochs that the trial is still running when its worker is found and killed (the
    # record shows an epoch up to a couple of seconds late; the State API answers in seconds).
    epochs = 10
    sweep = write_mnist1d_sweep(samples=1, epochs=epochs, wandb=True)
    path = tmp_path / "runs" / "kill-worker"
    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(result=launch(
        sweep, storage=str(tmp_path / "runs"), name="kill-worker", max_retries=1)))
    runner.start()

    def epoch_two_reported() -> bool:
        ledger = _ledger(path)
        return bool(ledger and any(t.epochs >= 2 for t in ledger.trials.values()))

    # The worker is found while the trial starts, then killed once a checkpoint exists.
    [worker] = wait_for(lambda: list_actors(filters=[
        ("class_name", "=", "RayTrainWorker"), ("state", "=", "ALIVE")]), 240, "a live worker")
    wait_for(epoch_two_reported, 240, "the trial's second epoch")
    killed_at = max(t.epochs for t in Ledger.load(path).trials.values())
    os.kill(worker.pid, signal.SIGKILL)
    runner.join(timeout=360)
    assert not runner.is_alive()

    [trial] = Ledger.load(path).trials.values()
    assert (trial.status, trial.epochs) == ("completed", epochs)
    reported = _tune_epochs(path / f"trial_{trial.trial_id}")
    # Resumed from the checkpoint, not from scratch: epochs never went back, none was skipped;
    # the resumed run re-sends its checkpoint's report once, in case Tune had not got it.
    assert reported == sorted(reported), reported
    assert list(dict.fromkeys(reported)) == list(range(1, epochs + 1)), reported
    assert len(reported) <= epochs + 1, reported
    assert killed_at < epochs
    assert outcome["result"].finished == 1
    # Still one W&B run: the restarted worker opened the run of the same id (an offline
    # directory per process, which `wandb sync` uploads as one), and logged the epochs it trained.
    run_dirs = sorted((path / "wandb").glob("offline-run-*"))
    assert len(run_dirs) >= 2, run_dirs
    assert {d.name.rsplit("-", 1)[-1] for d in run_dirs} == {trial.trial_id}, run_dirs
    [last_file] = run_dirs[-1].glob("run-*.wandb")
    last = read_run(last_file)
    assert last.name == trial.trial_id
    logged = [row["val/acc"] for row in last.history if "val/acc" in row]
    recorded = [e.metrics["val/acc"] for e in trial.history]
    assert 0 < len(logged) < epochs and logged == pytest.approx(recorded[-len(logged):])


@pytest.mark.timeout(300)
def test_a_killed_train_trials_process_frees_its_workers_cpus_for_the_next_trial(
        ray_session, write_mnist1d_sweep: SweepFile, tmp_path: Path) -> None:
    from ray.util.state import list_actors

    # Each trial's worker takes both CPUs of the test's Ray: the next trial can only start once
    # the killed trial's placement group, which Ray keeps while this job runs, is removed.
    epochs = 40  # still running when it is found (its epochs take 0.45-1 s each)
    sweep = write_mnist1d_sweep(samples=2, epochs=epochs)
    sweep.write_text(sweep.read_text() + "resources: {cpus_per_worker: 2}\n")
    path = tmp_path / "runs" / "kill-trial"
    before = {a.actor_id for a in list_actors(limit=10_000, raise_on_missing_output=False)}
    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(result=launch(
        sweep, storage=str(tmp_path / "runs"), name="kill-trial", max_retries=0)))
    runner.start()

    def first_trial_running() -> dict[str, Any] | None:
        """Tune's last result of the first trial (the first to report: one runs at a time),
        once it reported an epoch; it must still have epochs to go."""
        texts = (p.read_text() for p in path.glob("trial_*/result.json"))
        whole = (t.splitlines() if t.endswith("\n") else t.splitlines()[:-1] for t in texts)
        reported = [[json.loads(line) for line in lines] for lines in whole if lines]
        if not reported:
            return None
        first = min(reported, key=lambda results: results[0]["timestamp"])
        assert first[-1]["epoch"] < epochs, "found the first trial only after it ended"
        return first[-1]

    # The first trial's process (Tune's, which runs Train's controller and so made the run's
    # placement group) is killed in mid-run.
    os.kill(wait_for(first_trial_running, 240, "the first trial's first epoch")["pid"],
            signal.SIGKILL)
    runner.join(timeout=240)
    assert not runner.is_alive(), "the next trial never got the killed trial's CPUs"

    killed, other = sorted(Ledger.load(path).trials.values(), key=lambda t: t.status != "errored")
    assert (killed.status, other.status) == ("errored", "completed")
    assert killed.config["seed"] == trial_seed(0, 0)  # the first trial: the second came after
    assert killed.epochs < epochs and other.epochs == epochs
    assert (outcome["result"].finished, outcome["result"].errored) == (1, 1)
    # The sweep's driver removed the group: Train started no cleaner process for either run.
    cleaners = list_actors(limit=10_000, filters=[("class_name", "=", "PlacementGroupCleaner")],
                           raise_on_missing_output=False)
    assert not [a for a in cleaners if a.actor_id not in before]


@pytest.mark.timeout(300)
def test_a_killed_inline_trial_restarts_from_its_last_checkpoint(
        ray_session, write_mnist1d_sweep: SweepFile, tmp_path: Path) -> None:
    epochs = 20  # still running when its second epoch is recorded (up to 2 s late)
    sweep = write_mnist1d_sweep(samples=1, epochs=epochs)
    path = tmp_path / "runs" / "kill-inline"
    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(result=launch(
        sweep, storage=str(tmp_path / "runs"), name="kill-inline", max_retries=1,
        trial_runner="inline")))
    runner.start()

    def recorded_epoch_two() -> dict[str, Any] | None:
        ledger = _ledger(path)  # what the restarted trial will know it need not send again
        if not (ledger and any(t.epochs >= 2 for t in ledger.trials.values())):
            return None
        [results] = path.glob("trial_*/result.json")  # Tune's own record of the trial
        return json.loads(results.read_text().splitlines()[-1])

    # The trial's process is Tune's, and fits: killing it is the death of its one worker.
    os.kill(wait_for(recorded_epoch_two, 240, "the trial's second epoch")["pid"], signal.SIGKILL)
    runner.join(timeout=240)
    assert not runner.is_alive()

    [trial] = Ledger.load(path).trials.values()
    assert (trial.status, trial.epochs) == ("completed", epochs)
    reported = _tune_epochs(path / f"trial_{trial.trial_id}")
    # One restart, from the last checkpoint Tune kept (epoch 2 or later), not from scratch: the
    # restored fit sends again what the sweep may have missed, then goes on; no epoch skipped.
    restarted = next(i for i in range(1, len(reported)) if reported[i] <= reported[i - 1])
    before, after = reported[:restarted], reported[restarted:]
    assert before == list(range(1, len(before) + 1)), reported
    assert after == list(range(after[0], epochs + 1)) and 2 <= after[0] <= before[-1], reported
    assert outcome["result"].finished == 1


@pytest.mark.timeout(600)
def test_a_killed_driver_rerun_as_a_platform_reruns_it_finishes_without_rerunning(
    s3_bucket: str, write_mnist1d_sweep: SweepFile, tmp_path: Path
) -> None:
    # The experiment lives in an S3 bucket (a moto server here), as on a cloud cluster: nothing
    # of it is on the driver's disk, and resume, leaderboard and best read it from the bucket.
    # The driver is the entrypoint a platform reruns after a death (KubeRay's backoffLimit, a
    # SLURM requeue): the same command each time, on a new Ray.
    samples, epochs = 3, 5  # two at a time: one finishes while one is mid-way, one yet to start
    sweep = write_mnist1d_sweep(samples=samples, epochs=epochs)
    path = Location.parse(f"{s3_bucket}/runs/killed")
    entrypoint = ["launch", str(sweep), "--storage", f"{s3_bucket}/runs", "--name", "killed",
                  "--if-exists", "resume"]
    first = start_driver(entrypoint, cwd=tmp_path, log=tmp_path / "launch.log")
    try:
        # Kill the moment a trial has finished while another is mid-way: the finished one is
        # newer than Tune's last saved state, the case stock Ray re-runs.
        def one_finished() -> Ledger | None:
            ledger = _ledger(path)
            done = ledger and [t for t in ledger.trials.values() if t.status == "completed"]
            return ledger if done else None

        wait_for(one_finished, 300, "a finished trial")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        end_session(first)
    assert f"storage {s3_bucket}/runs is shared by all 1 nodes" in (
        tmp_path / "launch.log").read_text()
    before = Ledger.load(path)
    finished_before = {i: t for i, t in before.trials.items() if t.status == "completed"}
    in_flight = {i: t for i, t in before.trials.items() if t.status == "running" and t.epochs}
    checkpoints_before = {i: _checkpoint_dirs(path, i) for i in finished_before}

    second = start_driver(entrypoint, cwd=tmp_path, log=tmp_path / "resume.log")
    output = finish(second, tmp_path / "resume.log", timeout_s=420)
    assert second.returncode == 0, output[-3000:]
    # The dead driver's lease (its process ended on this host) was taken over at once.
    assert f"taking over the experiment from its last driver: process {first.pid}" in output
    assert f"resuming {path}" in output

    after = Ledger.load(path)
    assert len(after.trials) == samples
    assert all(t.status == "completed" for t in after.trials.values())
    for trial_id, trial in finished_before.items():
        # Kept as it was: same history, and no training after the resume.
        assert after.trials[trial_id].history == trial.history
        assert _checkpoint_dirs(path, trial_id) == checkpoints_before[trial_id]
    for trial_id in in_flight:
        epochs_seen = [e.epoch for e in after.trials[trial_id].history]
        assert epochs_seen == list(range(1, epochs + 1))
        # Continued from its checkpoint, not from scratch: Tune's results never went back.
        reported = _tune_epochs(path / f"trial_{trial_id}")
        assert reported == sorted(reported), reported
    # Checkpoints are counted in the bucket, and num_to_keep bounds them there too.
    for trial_id, trial in after.trials.items():
        assert trial.checkpoints == len(_checkpoint_dirs(path, trial_id)) <= 3
    # The searcher's state came back: a fresh TPE with the same seed would propose the first
    # configurations again.
    lrs = [t.config["module.lr"] for t in after.trials.values()]
    assert len(set(lrs)) == samples
    assert not (tmp_path / "runs").exists(), "nothing of the experiment on local disk"
    # optuna-dashboard's copy of the study, in the bucket too, went on after the resume.
    (tmp_path / "optuna.db").write_bytes((path / STUDY_FILE).read_bytes())
    study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{tmp_path}/optuna.db")
    assert sorted(t.params["module.lr"] for t in study.trials if t.state.name == "COMPLETE") == (
        sorted(lrs))

    # The best trial, fetched from the bucket: its checkpoint downloaded, its model loaded.
    best = subprocess.run(
        [sys.executable, str(REPO / "run_tune.py"), "best", path.uri, "--json", "--download",
         str(tmp_path / "best")], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert best.returncode == 0, best.stderr[-3000:]
    fetched = json.loads(best.stdout)
    assert fetched["checkpoint"].startswith(f"{path.uri}/trial_{fetched['trial_id']}/train/")
    assert fetched["local_checkpoint"] == str(tmp_path / "best" / "checkpoint.ckpt")
    assert fetched["value"] == max(t.best_epoch("val/acc", "max").metrics["val/acc"]  # type: ignore[union-attr]
                                   for t in after.trials.values())
    model = fetch_best(path.uri).load_model()
    assert model.hparams.lr == pytest.approx(fetched["config"]["module.lr"])


def _interrupted_launch(sweep: Path, tmp_path: Path, name: str) -> tuple[int | None, str]:
    """``launch`` of ``sweep`` into ``tmp_path/runs/name``, Ctrl-C'd once two trials have
    started (their workers still starting or fitting): its exit code and output."""
    log = tmp_path / "launch.log"
    driver = start_driver(["launch", str(sweep), "--storage", str(tmp_path / "runs"),
                           "--name", name], cwd=tmp_path, log=log)
    try:
        wait_for(lambda: len(_progress(log).started) >= 2, 240, "two started trials")
        driver.send_signal(signal.SIGINT)  # Ctrl-C
    finally:
        output = finish(driver, log, timeout_s=120)
    return driver.returncode, output


@pytest.mark.timeout(420)
def test_ctrl_c_leaves_a_resumable_experiment_and_resume_runs_a_trial_tunes_state_lost(
        write_mnist1d_sweep: SweepFile, tmp_path: Path) -> None:
    samples = 3
    sweep = write_mnist1d_sweep(samples=samples, epochs=6)
    path = tmp_path / "runs" / "lost"
    returncode, output = _interrupted_launch(sweep, tmp_path, "lost")
    assert returncode == 1, output[-3000:]
    assert f"Resume with: lightsweep resume {path}" in output
    statuses = {t.status for t in Ledger.load(path).trials.values()}
    assert statuses - {"completed", "stopped"}, "trials were left to resume"
    assert json.loads((path / LEDGER_FILE).read_text())["format"] == 2

    # What a driver killed while Tune uploads its state can leave (the CI met it, on S3): the
    # searcher saved after it proposed a trial, Tune's trials saved before it did.
    [state_file] = path.glob("experiment_state-*.json")
    state = json.loads(state_file.read_text())
    unfinished = [i for i, (trial, _) in enumerate(state["trial_data"])
                  if json.loads(trial)["status"] not in ("TERMINATED", "ERROR")]
    lost_trial = json.loads(state["trial_data"].pop(unfinished[-1])[0])
    state_file.write_text(json.dumps(state))
    lost_id = lost_trial["trial_id"]
    lost_config = Ledger.load(path).trials[lost_id].config

    resume_log = tmp_path / "resume.log"
    second = start_driver(["resume", str(path)], cwd=tmp_path, log=resume_log)
    output = finish(second, resume_log, timeout_s=300)
    assert second.returncode == 0, output[-3000:]
    assert f"trial {lost_id}: Ray Tune's saved state lost it" in output
    after = Ledger.load(path)
    assert len(after.trials) == samples and lost_id not in after.trials
    assert all(t.status == "completed" for t in after.trials.values())
    # Proposed again as it was, seed included, to a new trial: the sweep has all its trials.
    assert [t.config for t in after.trials.values()].count(lost_config) == 1
    study_copy = tmp_path / "optuna.db"
    study_copy.write_bytes((path / STUDY_FILE).read_bytes())
    study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{study_copy}")
    assert sorted(t.params["module.lr"] for t in study.trials if t.state.name == "COMPLETE") == (
        sorted(t.config["module.lr"] for t in after.trials.values()))


def _memory_fraction_in_use(extra_bytes: int) -> float:
    """The host's memory in use now plus ``extra_bytes``, as a fraction of its total."""
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    total, available = (int(info[k].split()[0]) * 1024 for k in ("MemTotal", "MemAvailable"))
    return (total - available + extra_bytes) / total


@pytest.mark.timeout(300)
def test_worker_killed_by_rays_memory_monitor_fails_its_trial_only(
    write_sweep: SweepWriter, tmp_path: Path
) -> None:
    # Ray's memory monitor acts when the host's memory use crosses a threshold: set it 5 GiB
    # above today's use (the sweep's Ray takes about 3), so that only the trial that hoards
    # memory crosses it.
    threshold = _memory_fraction_in_use(5 * 1024**3)
    sweep = write_sweep(
        module="tests.user_modules:HogsMemoryWhenWide",
        module_args={"arch": "mlp", "input_shape": [8, 8], "depth": 1},
        space={"module.width": {"choice": [32, 128]}},
        search={"num_samples": 2, "seed": 0},
        scheduler={"max_epochs": 2, "grace_period": 1},
        resources={"max_concurrent": 1},
    )
    log = tmp_path / "launch.log"
    driver = start_driver(
        ["launch", str(sweep), "--storage", str(tmp_path / "runs"), "--name", "oom"],
        cwd=REPO, log=log,
        env={"RAY_memory_usage_threshold": f"{threshold:.3f}", "RAY_memory_monitor_refresh_ms": "100"},
    )
    output = finish(driver, log, timeout_s=240)
    assert driver.returncode == 0, output[-3000:]
    rows = {r["config"]["module.width"]: r for r in leaderboard(tmp_path / "runs" / "oom")}
    assert sorted(rows) == [32, 128], "the seeded search proposes both widths"
    assert rows[32]["status"] == "completed"
    assert rows[128]["status"] == "errored"
    assert rows[128]["error"].startswith("OutOfMemoryError: ")
    assert "running low on memory" in rows[128]["error"]
    assert "restarting from the last checkpoint" not in output, "an OOM kill was retried"


@contextlib.contextmanager
def _small_device(mountpoint: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of ``size_mb`` at ``mountpoint``: a device the test can fill without harm."""
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs",
                              str(mountpoint)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "--lazy", str(mountpoint)], check=True)


def _fill(device: Path) -> Path:
    """Writes a file until the device has no byte left; returns it."""
    filler = device / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (1 << 20, 1 << 12, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * chunk)
    finally:
        os.close(fd)
    return filler


@pytest.mark.timeout(600)
def test_full_disk_stops_the_sweep_and_resume_finishes_it(
        write_mnist1d_sweep: SweepFile, tmp_path: Path) -> None:
    samples, epochs = 2, 10
    sweep = write_mnist1d_sweep(samples=samples, epochs=epochs)
    with _small_device(tmp_path / "small", size_mb=64) as device:
        storage = device / "runs"
        path = storage / "full"
        log = tmp_path / "launch.log"
        first = start_driver(["launch", str(sweep), "--storage", str(storage), "--name", "full"],
                        cwd=tmp_path, log=log)
        try:
            def reported() -> bool:
                # Mid-sweep: two epochs in (the console says so as they end), and Ray Tune's
                # state (its searcher's included) saved whole once, which resume needs.
                return bool(max(_progress(log).reported.values(), default=0) >= 2
                            and list((path / "lightsweep/tune-state").glob("searcher-state-*")))

            wait_for(reported, 300, "two epochs and Tune's saved state")
            filler = _fill(device)
        finally:
            output = finish(first, log, timeout_s=180)
        assert first.returncode == 1, output[-3000:]
        assert f"no space left on the device that holds {path}" in output, output[-3000:]
        assert f"lightsweep resume {path}" in output
        # Said once, as lightsweep's last word, not as an uncaught traceback.
        said = [line for line in output.splitlines() if " error: no space left on the device" in line]
        assert len(said) == 1 and not output.rstrip().splitlines()[-1].startswith(
            ("Traceback", "OSError", "tuning.errors", "ray.")), output[-2000:]
        # Nothing half-written passes for whole, and no trial is blamed for the full disk.
        before = Ledger.load(path)
        assert not list((path / "lightsweep").glob("*.tmp"))
        assert all(t.status != "errored" for t in before.trials.values())
        assert any(t.status == "running" and t.epochs < epochs for t in before.trials.values())

        filler.unlink()  # the user frees space
        # In some runs the full disk cuts short Ray Train's checkpoint list of the running trial
        # (Train rewrites it in place); make that certain, as resume must survive it.
        snapshots = [path / f"trial_{trial_id}" / TRAIN_RUN_NAME / CHECKPOINT_SNAPSHOT
                     for trial_id, trial in before.trials.items() if trial.status == "running"]
        for snapshot in [s for s in snapshots if s.is_file()]:  # a trial yet to report has none
            snapshot.write_bytes(snapshot.read_bytes()[:20])
        second = start_driver(["resume", str(path)], cwd=tmp_path, log=tmp_path / "resume.log")
        output = finish(second, tmp_path / "resume.log", timeout_s=300)
        assert second.returncode == 0, output[-3000:]
        after = Ledger.load(path)
        assert len(after.trials) == samples
        for trial_id, trial in after.trials.items():
            assert trial.status == "completed", (trial_id, trial.error, output[-3000:])
            assert [e.epoch for e in trial.history] == list(range(1, epochs + 1))
            if trial_id in before.trials and before.trials[trial_id].epochs:
                # Continued from its last checkpoint: Tune's results never went back.
                reported_epochs = _tune_epochs(path / f"trial_{trial_id}")
                assert reported_epochs == sorted(reported_epochs), reported_epochs


@pytest.mark.timeout(600)
def test_lost_node_leaves_its_trials_to_finish_on_the_surviving_node(
    two_node_cluster: LocalCluster, write_mnist1d_sweep: SweepFile, tmp_path: Path
) -> None:
    # One CPU on each node (every trial's driver on the head): two one-worker trials fill both,
    # so losing the second node kills one trial's worker, to be retried on the head once the
    # other trial ends. Epochs of about 0.8 s with both training: 28 of them, or a trial ends
    # before the other's worker (on the second node, 4 s slower to start here) reports at all.
    samples, epochs = 2, 28
    sweep = write_mnist1d_sweep(samples=samples, epochs=epochs)
    path = tmp_path / "runs" / "node"
    log = tmp_path / "launch.log"
    driver = start_driver(["launch", str(sweep), "--storage", str(tmp_path / "runs"), "--name", "node",
                      "--address", two_node_cluster.address],
                     cwd=tmp_path, log=log, env=two_node_cluster.env)
    try:
        def all_reported() -> bool:
            # From the driver's progress lines, printed as epochs end: the record lags by its
            # flush interval, and these epochs take half a second.
            progress = _progress(log)
            return len(progress.reported) == samples and not progress.ended

        wait_for(all_reported, 300, "every trial's first epoch")
        two_node_cluster.lose_node()
    finally:
        output = finish(driver, log, timeout_s=420)
    assert driver.returncode == 0, output[-3000:]
    assert output.count("a worker died") >= 1, output[-3000:]
    after = Ledger.load(path)
    assert len(after.trials) == samples
    for trial_id, trial in after.trials.items():
        assert trial.status == "completed"
        assert [e.epoch for e in trial.history] == list(range(1, epochs + 1))
        # From the last checkpoint: Tune's epochs never went back (the resumed run re-sends
        # its checkpoint's epoch once, so at most one repeat).
        reported = _tune_epochs(path / f"trial_{trial_id}")
        assert reported == sorted(reported) and len(reported) <= epochs + 1, reported


@pytest.mark.oldest
@pytest.mark.timeout(600)
def test_resume_keeps_a_trial_that_finished_after_tunes_last_saved_state(
        write_mnist1d_sweep: SweepFile, tmp_path: Path) -> None:
    # Tune saves its state once, at the start (TUNE_GLOBAL_CHECKPOINT_S), so the second trial is
    # created and finished after it: after the restore Tune does not know that trial, and its
    # searcher proposes the configuration again.
    samples, epochs = 3, 3
    sweep = write_mnist1d_sweep(samples=samples, epochs=epochs)
    path = tmp_path / "runs" / "unsaved"
    env = {"TUNE_GLOBAL_CHECKPOINT_S": "3600"}
    first = start_driver(["launch", str(sweep), "--storage", str(tmp_path / "runs"), "--name", "unsaved",
                     "--max-concurrent", "1"], cwd=tmp_path, log=tmp_path / "launch.log", env=env)
    try:
        def two_finished() -> bool:
            ledger = _ledger(path)
            return bool(ledger and sum(t.status == "completed" for t in ledger.trials.values()) == 2)

        wait_for(two_finished, 400, "two finished trials")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        end_session(first)
    finished_before = {json.dumps(t.config, sort_keys=True): t
                       for t in Ledger.load(path).trials.values() if t.status == "completed"}

    second = start_driver(["resume", str(path)], cwd=tmp_path, log=tmp_path / "resume.log", env=env)
    output = finish(second, tmp_path / "resume.log", timeout_s=400)
    assert second.returncode == 0, output[-3000:]
    after = {json.dumps(t.config, sort_keys=True): t for t in Ledger.load(path).trials.values()}
    assert len(after) == samples, "exactly the requested number of trials"
    assert all(t.status == "completed" for t in after.values())
    adopted = 0
    for config, before in finished_before.items():
        assert after[config].history == before.history, "kept as it was"
        if after[config].trial_id != before.trial_id:  # the one Tune did not know
            adopted += 1
            train_dir = path / f"trial_{after[config].trial_id}" / "train"
            assert not list(train_dir.glob("checkpoint_*")), "trained again"
    assert adopted == 1
    assert "is kept, not trained again" in output


@pytest.mark.timeout(420)
def test_one_driver_per_experiment_and_sigterm_saves_the_sweep_for_its_rerun(
        write_mnist1d_sweep: SweepFile, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    samples, epochs = 2, 20  # still running when the second drivers and the notice come
    sweep = write_mnist1d_sweep(samples=samples, epochs=epochs)
    path = tmp_path / "runs" / "live"
    entrypoint = ["launch", str(sweep), "--storage", str(tmp_path / "runs"), "--name", "live",
                  "--if-exists", "resume"]
    log = tmp_path / "launch.log"
    first = start_driver(entrypoint, cwd=tmp_path, log=log)
    try:
        wait_for(lambda: _progress(log).reported, 240, "the first trial's first epoch")
        # A second driver on the live experiment, by resume or by the same entrypoint, is
        # refused before it starts Ray, naming where the live one runs (in this process: a
        # second driver's own start-up would outlast the short sweep).
        for args in (["resume", str(path)], entrypoint):
            caplog.clear()
            assert main(args) == 2
            assert (f"another driver runs this experiment (process {first.pid} on "
                    f"{socket.gethostname()}") in caplog.text
        # The platform's notice: the sweep stops, its state saved, and the driver says
        # "requeue me" with its exit code.
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=180)
    finally:
        output = finish(first, log, timeout_s=60)
    assert first.returncode == REQUEUE_EXIT, output[-3000:]
    assert "SIGTERM: stopping the sweep and saving its state" in output
    assert not (path / LEASE_FILE).exists()  # released as it ended
    stopped = Ledger.load(path)
    assert sum(t.epochs for t in stopped.trials.values()) < samples * epochs

    rerun = start_driver(entrypoint, cwd=tmp_path, log=tmp_path / "rerun.log")
    output = finish(rerun, tmp_path / "rerun.log", timeout_s=300)
    assert rerun.returncode == 0, output[-3000:]
    after = Ledger.load(path)
    assert len(after.trials) == samples
    for trial in after.trials.values():
        assert trial.status == "completed"
        assert [e.epoch for e in trial.history] == list(range(1, epochs + 1))  # each once
    # Run again once finished: nothing runs, and it says where the results are.
    done = start_driver(entrypoint, cwd=tmp_path, log=tmp_path / "done.log")
    output = finish(done, tmp_path / "done.log", timeout_s=120)
    assert done.returncode == 0 and f"{path} is finished: 2 trials ended" in output
    assert Ledger.load(path).trials == after.trials


@pytest.mark.timeout(300)
def test_a_killed_train_trials_process_is_retried_from_its_last_checkpoint(
        ray_session, write_mnist1d_sweep: SweepFile, tmp_path: Path) -> None:
    epochs = 20  # still running when it is found (its epochs take 0.45-1 s each)
    sweep = write_mnist1d_sweep(samples=1, epochs=epochs)
    path = tmp_path / "runs" / "retried"
    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(result=launch(
        sweep, storage=str(tmp_path / "runs"), name="retried", max_retries=1)))
    runner.start()

    def reported_twice() -> dict[str, Any] | None:
        [*results] = path.glob("trial_*/result.json")
        lines = results[0].read_text().splitlines() if results else []
        return json.loads(lines[-1]) if len(lines) >= 2 else None

    # The trial's own process (Tune's, which drives its Train run), not a worker, is killed.
    os.kill(wait_for(reported_twice, 240, "the trial's second epoch")["pid"], signal.SIGKILL)
    runner.join(timeout=240)
    assert not runner.is_alive()
    [trial] = Ledger.load(path).trials.values()
    assert (trial.status, [e.epoch for e in trial.history]) == (
        "completed", list(range(1, epochs + 1)))
    # From its last checkpoint, not from scratch: no result after the first went back to
    # epoch 1 (Tune's results may show the restart as a repeated epoch).
    reported = _tune_epochs(path / f"trial_{trial.trial_id}")
    assert reported and 1 not in reported[1:], reported
    assert outcome["result"].finished == 1
