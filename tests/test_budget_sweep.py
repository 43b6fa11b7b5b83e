"""A budgeted sweep, killed and resumed, stops at its budget (plus at most the epoch each running
trial was in), says so, and runs nothing more until the budget is raised."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import optuna
import pytest

from tests.processes import finish, start_driver, wait_for
from tuning.record import Ledger
from tuning.record.budget import Spent
from tuning.record.study_file import STUDY_FILE, STUDY_NAME, TRIAL_ID_ATTR

pytestmark = [pytest.mark.ray]

BUDGET_S = 30.0  # worker-seconds: a few trials' worth, far fewer than the sweep's 16
CONCURRENT = 2


def _ledger(path: Path) -> Ledger | None:
    try:
        return Ledger.load(path)
    except Exception:  # noqa: BLE001 - not written yet, or mid-write: look again
        return None


@pytest.mark.timeout(600)
def test_a_budgeted_sweep_killed_and_resumed_stops_at_its_budget(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "module: lightning_modules.classifier:Classifier\n"
        "datamodule: lightning_modules.datamodules:DigitsDataModule\n"
        "module_args: {arch: mlp, input_shape: [8, 8], width: 256, depth: 2}\n"
        "datamodule_args: {batch_size: 8}\n"
        "space:\n"
        "  module.lr: {loguniform: [1e-3, 1e-1]}\n"
        "metric: val/acc\nmode: max\n"
        "search: {num_samples: 16, seed: 0}\n"
        "scheduler: {max_epochs: 4, grace_period: 1, reduction_factor: 2}\n"
        f"resources: {{max_concurrent: {CONCURRENT}}}\n"
        f"budget: {{worker_hours: {BUDGET_S / 3600}}}\n"
    )
    path = tmp_path / "runs" / "budget"
    entrypoint = ["launch", str(sweep), "--storage", str(tmp_path / "runs"), "--name", "budget",
                  "--if-exists", "resume", "--no-wandb"]
    first = start_driver(entrypoint, cwd=tmp_path, log=tmp_path / "launch.log")
    try:
        wait_for(lambda: (ledger := _ledger(path)) and any(
            t.status in ("completed", "stopped") for t in ledger.trials.values()),
            300, "a trial that ended")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        finish(first, tmp_path / "launch.log", timeout_s=30)
    killed = Ledger.load(path)
    spent_before = Spent.of_record(killed.trials.values(), 1).worker_s
    assert spent_before < BUDGET_S, "killed before its budget was spent"

    second = start_driver(entrypoint, cwd=tmp_path, log=tmp_path / "resume.log")
    output = finish(second, tmp_path / "resume.log", timeout_s=420)
    assert second.returncode == 0, output[-3000:]
    after = Ledger.load(path)
    epochs = [e for t in after.trials.values() for e in t.history]
    spent = Spent.of_record(after.trials.values(), 1)
    # The budget, plus at most one epoch of each trial running when it was spent.
    assert BUDGET_S <= spent.worker_s <= BUDGET_S + CONCURRENT * max(
        e.seconds or 0.0 for e in epochs), spent.worker_s
    assert "budget spent: " in output and "worker-hours" in output
    assert "did not run. Run them with a larger one" in output
    ended = [t for t in after.trials.values() if t.status in ("completed", "stopped")]
    assert len(ended) < 16, "the budget ended the sweep before all its trials"
    by_budget = [t for t in ended if t.stopped_by == "budget"]
    assert all(t.epochs < 4 for t in by_budget)
    study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{path / STUDY_FILE}")
    told = {t.user_attrs[TRIAL_ID_ATTR]: t.state.name for t in study.trials}
    assert all(told[t.trial_id] == "PRUNED" for t in by_budget if t.trial_id in told)

    # Resumed with the budget spent: nothing runs until it is raised.
    third = start_driver(["resume", str(path)], cwd=tmp_path, log=tmp_path / "again.log")
    again = finish(third, tmp_path / "again.log", timeout_s=120)
    assert third.returncode == 0, again[-3000:]
    assert "budget spent: " in again and "nothing runs. Fix: raise it" in again
    assert [e for t in Ledger.load(path).trials.values() for e in t.history] == epochs
