"""Faults injected into real sweeps: each test kills or breaks something and counts what survived.

The tests start and stop only Ray processes they own: the workers of their own trials (found
through Ray's State API) and drivers they started themselves.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tuning import launch
from tuning.ledger import LEDGER_FILE, Ledger

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
)


def _write_sweep(directory: Path, samples: int, epochs: int) -> Path:
    path = directory / "sweep.yaml"
    path.write_text(MNIST1D_SWEEP.format(data_dir=directory / "data", samples=samples,
                                         epochs=epochs))
    return path


def _wait_for(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def _ledger(path: Path) -> Ledger | None:
    return Ledger.load(path) if (path / LEDGER_FILE).is_file() else None


def _tune_epochs(trial_dir: Path) -> list[int]:
    """The epochs of every result Tune received for a trial, in order (its progress.csv)."""
    with open(trial_dir / "progress.csv") as f:
        return [int(float(row["epoch"])) for row in csv.DictReader(f)]


@pytest.mark.timeout(420)
def test_killed_worker_restarts_from_last_checkpoint(ray_session, tmp_path: Path) -> None:
    from ray.util.state import list_actors

    epochs = 6
    sweep = _write_sweep(tmp_path, samples=1, epochs=epochs)
    path = tmp_path / "runs" / "kill-worker"
    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(result=launch(
        sweep, storage=str(tmp_path / "runs"), name="kill-worker", max_retries=1)))
    runner.start()

    def epoch_two_reported() -> bool:
        ledger = _ledger(path)
        return bool(ledger and any(t.epochs >= 2 for t in ledger.trials.values()))

    _wait_for(epoch_two_reported, 240, "the trial's second epoch")
    [worker] = _wait_for(lambda: list_actors(filters=[
        ("class_name", "=", "RayTrainWorker"), ("state", "=", "ALIVE")]), 30, "a live worker")
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


def _driver(args: list[str], cwd: Path, log: Path) -> subprocess.Popen[str]:
    """A sweep driver in its own process session, so the test can end all it started."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, str(REPO / "run_tune.py"), *args], cwd=cwd, env=env, text=True,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )


def _finish(process: subprocess.Popen[str], log: Path, timeout_s: float) -> str:
    try:
        process.wait(timeout=timeout_s)
    finally:
        _end_session(process)
    return log.read_text()


def _end_session(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):  # the driver's own session: its Ray processes
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.mark.timeout(600)
def test_resume_after_driver_killed_finishes_without_rerunning(tmp_path: Path) -> None:
    samples, epochs = 4, 5
    sweep = _write_sweep(tmp_path, samples=samples, epochs=epochs)
    path = tmp_path / "runs" / "killed"
    first = _driver(["launch", str(sweep), "--storage", str(tmp_path / "runs"),
                     "--name", "killed"], cwd=tmp_path, log=tmp_path / "launch.log")
    try:
        # Kill the moment a trial has finished while another is mid-way: the finished one is
        # newer than Tune's last saved state, the case stock Ray re-runs.
        def one_finished() -> Ledger | None:
            ledger = _ledger(path)
            done = ledger and [t for t in ledger.trials.values() if t.status == "completed"]
            return ledger if done else None

        _wait_for(one_finished, 300, "a finished trial")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        _end_session(first)
    before = Ledger.load(path)
    finished_before = {i: t for i, t in before.trials.items() if t.status == "completed"}
    in_flight = {i: t for i, t in before.trials.items() if t.status == "running" and t.epochs}
    checkpoints_before = {
        i: sorted(p.name for p in (path / f"trial_{i}" / "train").glob("checkpoint_*"))
        for i in finished_before
    }

    second = _driver(["resume", str(path)], cwd=tmp_path, log=tmp_path / "resume.log")
    output = _finish(second, tmp_path / "resume.log", timeout_s=420)
    assert second.returncode == 0, output[-3000:]

    after = Ledger.load(path)
    assert len(after.trials) == samples
    assert all(t.status == "completed" for t in after.trials.values())
    for trial_id, trial in finished_before.items():
        # Kept as it was: same history, and no training after the resume.
        assert after.trials[trial_id].history == trial.history
        now = sorted(p.name for p in (path / f"trial_{trial_id}" / "train").glob("checkpoint_*"))
        assert now == checkpoints_before[trial_id]
    for trial_id in in_flight:
        epochs_seen = [e.epoch for e in after.trials[trial_id].history]
        assert epochs_seen == list(range(1, epochs + 1))
        # Continued from its checkpoint, not from scratch: Tune's results never went back.
        reported = _tune_epochs(path / f"trial_{trial_id}")
        assert reported == sorted(reported), reported
    # The searcher's state came back: a fresh TPE with the same seed would propose the first
    # configurations again.
    lrs = [t.config["module.lr"] for t in after.trials.values()]
    assert len(set(lrs)) == samples


@pytest.mark.timeout(300)
def test_interrupt_leaves_a_resumable_experiment(tmp_path: Path) -> None:
    sweep = _write_sweep(tmp_path, samples=3, epochs=30)
    path = tmp_path / "runs" / "ctrl-c"
    log = tmp_path / "launch.log"
    driver = _driver(["launch", str(sweep), "--storage", str(tmp_path / "runs"),
                      "--name", "ctrl-c"], cwd=tmp_path, log=log)
    try:
        def reported() -> bool:
            ledger = _ledger(path)
            return bool(ledger and any(t.epochs >= 1 for t in ledger.trials.values()))

        _wait_for(reported, 240, "a first epoch")
        driver.send_signal(signal.SIGINT)  # Ctrl-C
    finally:
        output = _finish(driver, log, timeout_s=120)
    assert driver.returncode == 1, output[-3000:]
    assert f"Resume with: python run_tune.py resume {path}" in output
    statuses = {t.status for t in Ledger.load(path).trials.values()}
    assert statuses - {"completed", "stopped"}, "trials were left to resume"
    assert json.loads((path / LEDGER_FILE).read_text())["format"] == 1
