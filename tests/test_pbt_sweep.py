"""Population-based training on real Ray: a DDP trial that falls behind continues from the
leader's checkpoint with the values PBT chose, and those are the values its optimizer uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SweepWriter
from tuning import fetch_best, launch, leaderboard
from tuning.record import Ledger
from tuning.record.layout import trial_path

pytestmark = [pytest.mark.ray]


@pytest.mark.timeout(480)
def test_a_lagging_ddp_trial_exploits_the_leader_and_trains_with_the_chosen_lr(
    ray_session, write_sweep: SweepWriter, tmp_path: Path
) -> None:
    epochs, interval = 8, 2
    sweep = write_sweep(
        datamodule="lightning_modules.datamodules:MNIST1DDataModule",
        module_args={"arch": "cnn1d", "input_shape": [40], "width": 16, "depth": 2},
        datamodule_args={"data_dir": str(tmp_path / "data")},
        # Seed 7's two proposals: lr 2.0e-5 (which barely learns in 8 epochs) and 1.3e-2.
        space={"module.lr": {"loguniform": [1e-5, 0.1]}, "datamodule.batch_size": 32},
        search={"num_samples": 2, "seed": 7, "sampler": "random"},
        scheduler={"name": "pbt", "max_epochs": epochs, "perturbation_interval": interval,
                   "quantile_fraction": 0.5, "resample_probability": 0.0},
        resources={"workers_per_trial": 2, "cpus_per_worker": 0.5},
    )
    outcome = launch(sweep, storage=str(tmp_path / "runs"), name="pbt")
    assert outcome.finished == 2
    ledger = Ledger.load(outcome.path)
    [moved] = [t for t in ledger.trials.values() if t.lineage]
    [leader] = [t for t in ledger.trials.values() if not t.lineage]
    first = moved.lineage[0]
    assert first["donor"] == leader.trial_id
    assert first["before"]["module.lr"] < 1e-4 < leader.config["module.lr"]

    # The rate PBT chose last, read back from the optimizer in the workers, in every epoch
    # the trial trained after that exploit: it trains on from the donor's epoch.
    last = moved.lineage[-1]
    after = [e for e in moved.history if e.epoch > last["epoch"]]
    assert [e.epoch for e in after] == list(range(last["epoch"] + 1, epochs + 1))
    for entry in after:
        assert entry.metrics["optimizer/lr"] == pytest.approx(last["values"]["module.lr"])
        assert entry.metrics["world_size"] == 2
    # The leader's weights came along: better at once than the trial ever was on its own.
    own_best = max(e.metrics["val/acc"] for e in moved.history if e.epoch <= first["epoch"])
    assert after[0].metrics["val/acc"] > own_best + 0.2, moved.history
    # The donor is untouched: it ran all its epochs, its checkpoints where they were.
    assert (leader.status, leader.epochs) == ("completed", epochs)
    assert all(Path(e.checkpoint).is_file() for e in leader.history if e.checkpoint)
    assert (Path(trial_path(outcome.path, leader.trial_id).uri) / "train").is_dir()

    rows = {r["trial_id"]: r for r in leaderboard(outcome.path)}
    schedule = rows[moved.trial_id]["schedule"]
    assert schedule[0]["values"]["module.lr"] == first["before"]["module.lr"]
    assert schedule[1] == {"from_epoch": first["epoch"] + 1, "donor": leader.trial_id,
                           "values": first["values"]}
    assert "schedule" not in rows[leader.trial_id]
    best = fetch_best(outcome.path)
    assert Path(best.checkpoint).is_file()
