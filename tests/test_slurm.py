"""A sweep submitted to a real (one-node) SLURM with one command survives a requeue mid-sweep:
the job runs again, continues the sweep, and ends with exactly its trials, those finished
before untouched."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import BASE_SWEEP, REPO
from tests.processes import wait_for
from tests.slurm_cluster import slurm_cluster
from tuning.record import Ledger
from tuning.record.layout import LEASE_FILE, LEDGER_FILE

pytestmark = [pytest.mark.ray]


@pytest.fixture(scope="module")
def slurm() -> Iterator[None]:
    with slurm_cluster() as reason:
        if reason is not None:
            pytest.skip(reason)
        yield


def _job(job_id: str) -> dict[str, str]:
    text = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True,
                          check=False).stdout
    return dict(re.findall(r"(\w+)=(\S*)", text))


def _record(path: Path) -> Ledger | None:
    return Ledger.load(path) if (path / LEDGER_FILE).is_file() else None


@pytest.mark.timeout(900)
def test_a_submitted_sweep_survives_a_requeue_and_ends_with_exactly_its_trials(
        slurm: None, tmp_path: Path) -> None:
    samples, epochs = 4, 6
    sweep = {**BASE_SWEEP, "search": {"num_samples": samples, "seed": 0},
             "scheduler": {"name": "fifo", "max_epochs": epochs},
             "resources": {"workers_per_trial": 1, "max_concurrent": 1}}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    submitted = subprocess.run(
        [sys.executable, str(REPO / "run_tune.py"), "slurm", "sweep.yaml", "--name", "requeued",
         "--cpus-per-node", "2", "--storage", str(tmp_path / "runs"), "--submit"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert submitted.returncode == 0, submitted.stderr[-2000:]
    job = submitted.stdout.split()[-1]
    path = tmp_path / "runs" / "requeued"
    try:
        def one_done_one_running() -> Ledger | None:
            ledger = _record(path)
            statuses = [t.status for t in ledger.trials.values()] if ledger else []
            return ledger if "completed" in statuses and "running" in statuses else None

        before = wait_for(one_done_one_running, 420, "a finished trial and a running one")
        finished = {i: t for i, t in before.trials.items() if t.status == "completed"}
        subprocess.run(["scontrol", "requeue", job], check=True, timeout=30)
        # SLURM holds a requeued job back two minutes; the test need not wait them out.
        wait_for(lambda: _job(job).get("JobState") == "PENDING", 120, "the requeue")
        subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], timeout=30,
                       check=False)
        wait_for(lambda: _job(job).get("JobState") in ("COMPLETED", "FAILED", "CANCELLED"),
                 600, "the job's end")
    finally:
        subprocess.run(["scancel", job], check=False, timeout=30)
    state = _job(job)
    output = "\n".join(p.read_text() for p in tmp_path.glob("lightsweep-requeued-*.out"))
    assert (state["JobState"], state["Restarts"]) == ("COMPLETED", "1"), output[-3000:]
    assert "lightsweep: job" in output and ", run 1" in output  # it ran again
    after = Ledger.load(path)
    assert len(after.trials) == samples
    for trial in after.trials.values():
        assert trial.status == "completed"
        assert [e.epoch for e in trial.history] == list(range(1, epochs + 1))
    for trial_id, trial in finished.items():
        assert after.trials[trial_id].history == trial.history  # untouched by the rerun
    assert not (path / LEASE_FILE).exists()
