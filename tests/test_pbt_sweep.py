"""Population-based training on real Ray: a DDP trial that falls behind continues from the
leader's checkpoint with the values PBT chose, and those are the values its optimizer uses, also
after the sweep's driver is killed mid-way and the sweep resumed."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.conftest import SweepWriter
from tests.processes import end_session, finish, start_driver, wait_for
from tuning import fetch_best, leaderboard
from tuning.record import Ledger
from tuning.record.layout import LEDGER_FILE

pytestmark = [pytest.mark.ray]


@pytest.mark.timeout(600)
def test_a_lagging_ddp_trial_exploits_the_leader_and_trains_with_the_chosen_lr(
    write_sweep: SweepWriter, mnist1d_dir: Path, tmp_path: Path
) -> None:
    """Also across a driver killed mid-PBT and resumed: nothing of the lineage, nor of the
    values PBT chose, is lost."""
    epochs, interval = 6, 2
    sweep = write_sweep(
        datamodule="lightning_modules.datamodules:MNIST1DDataModule",
        module_args={"arch": "cnn1d", "input_shape": [40], "width": 16, "depth": 2},
        datamodule_args={"data_dir": str(mnist1d_dir)},
        # Seed 7's two proposals: lr 2.0e-5 (which barely learns in 6 epochs) and 1.3e-2.
        space={"module.lr": {"loguniform": [1e-5, 0.1]}, "datamodule.batch_size": 32},
        search={"num_samples": 2, "seed": 7, "sampler": "random"},
        scheduler={"name": "pbt", "max_epochs": epochs, "perturbation_interval": interval,
                   "quantile_fraction": 0.5, "resample_probability": 0.0},
        resources={"workers_per_trial": 2, "cpus_per_worker": 0.5},
    )
    path = tmp_path / "runs" / "pbt"
    first = start_driver(["launch", str(sweep), "--storage", str(tmp_path / "runs"),
                          "--name", "pbt"], cwd=tmp_path, log=tmp_path / "launch.log")
    try:
        # Killed once a moved trial has trained an epoch on the leader's weights.
        def trained_after_exploit() -> Ledger | None:
            ledger = Ledger.load(path) if (path / LEDGER_FILE).is_file() else None
            moved = [t for t in ledger.trials.values() if t.lineage] if ledger else []
            return ledger if any(t.epochs > t.lineage[0]["epoch"] for t in moved) else None

        before = wait_for(trained_after_exploit, 420, "an epoch after an exploit")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        end_session(first)
    assert any(t.epochs < epochs for t in before.trials.values()), "killed mid-way"
    lineage_before = {t.trial_id: t.lineage for t in before.trials.values() if t.lineage}
    second = start_driver(["resume", str(path)], cwd=tmp_path, log=tmp_path / "resume.log")
    output = finish(second, tmp_path / "resume.log", timeout_s=420)
    assert second.returncode == 0, output[-3000:]

    ledger = Ledger.load(path)
    trials = list(ledger.trials.values())
    for trial_id, lineage in lineage_before.items():  # what was moved before the kill stays
        assert ledger.trials[trial_id].lineage[:len(lineage)] == lineage
    # Each epoch recorded once, in order: the resume went on where each trial stood. A trial
    # moved onto a donor that was ahead of it goes on from the donor's epoch: the epochs between
    # are the donor's, not recorded as its own.
    for t in trials:
        recorded = [e.epoch for e in t.history]
        assert recorded == sorted(set(recorded)) and recorded[0] == 1 and recorded[-1] == epochs
        for missing in set(range(1, epochs + 1)) - set(recorded):
            assert any(missing <= x["epoch"] and not set(range(missing, x["epoch"] + 1))
                       & set(recorded) for x in t.lineage), (missing, recorded, t.lineage)
    [weak] = [t for t in trials if t.schedule()[0]["values"]["module.lr"] < 1e-4]
    [leader] = [t for t in trials if t is not weak]
    assert weak.lineage, "the lagging trial was moved"
    first = weak.lineage[0]
    assert first["donor"] == leader.trial_id
    assert first["before"]["module.lr"] < 1e-4 < leader.schedule()[0]["values"]["module.lr"]
    assert all((t.status, t.epochs) == ("completed", epochs) for t in trials)

    # The rate PBT chose last, read back from the optimizer in the workers, in every epoch
    # each moved trial trained after that exploit: it trains on from the donor's epoch.
    for trial in (t for t in trials if t.lineage):
        last = trial.lineage[-1]
        after = [e for e in trial.history if e.epoch > last["epoch"]]
        assert [e.epoch for e in after] == list(range(last["epoch"] + 1, epochs + 1))
        for entry in after:
            assert entry.metrics["optimizer/lr"] == pytest.approx(last["values"]["module.lr"])
            assert entry.metrics["world_size"] == 2
            assert entry.metrics["pbt/generation"] == last["generation"]
    # The leader's weights came along: better at once than the trial ever was on its own.
    own_best = max(e.metrics["val/acc"] for e in weak.history if e.epoch <= first["epoch"])
    inherited = next(e for e in weak.history if e.epoch == first["epoch"] + 1)
    if len(weak.lineage) == 1:  # (a later exploit trains that epoch again)
        assert inherited.metrics["val/acc"] > own_best + 0.2, weak.history
    # A moved trial trained on from a copy in its own directory, never from the donor's own
    # files; every trial's last checkpoint is its own.
    for trial in trials:
        if trial.lineage:
            copy = Path(trial.lineage[-1]["checkpoint"])
            assert copy.parent.parent.name == f"trial_{trial.trial_id}", copy
            assert (copy / "checkpoint.ckpt").is_file()
        assert f"trial_{trial.trial_id}/train/" in trial.history[-1].checkpoint
        assert Path(trial.history[-1].checkpoint).is_file()

    rows = {r["trial_id"]: r for r in leaderboard(path)}
    schedule = rows[weak.trial_id]["schedule"]
    assert schedule[0]["values"]["module.lr"] == first["before"]["module.lr"]
    assert schedule[1] == {"from_epoch": first["epoch"] + 1, "donor": leader.trial_id,
                           "values": first["values"]}
    assert all(("schedule" in rows[t.trial_id]) == bool(t.lineage) for t in trials)
    best = fetch_best(path)
    assert Path(best.checkpoint).is_file()
