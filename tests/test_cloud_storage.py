"""A sweep whose storage is an S3 bucket (a moto server on this machine), as on a cloud cluster.

Nothing of the experiment is written on local disk: the leaderboard, Tune's state and every
checkpoint go to the bucket, and ``resume``, ``leaderboard`` and ``best`` read them from there.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import lightning.pytorch as pl
import pytest
import yaml

from tests.conftest import BASE_SWEEP
from tests.processes import end_session, finish, start_driver, wait_for
from tuning import fetch_best
from tuning.ledger import LEDGER_FILE, Ledger
from tuning.location import Location

pytestmark = [pytest.mark.ray]


def _ledger(experiment: Location) -> Ledger | None:
    return Ledger.load(experiment) if (experiment / LEDGER_FILE).is_file() else None


@pytest.mark.timeout(600)
def test_sweep_in_a_bucket_survives_its_driver_and_its_best_model_loads_from_there(
    s3_bucket: str, tmp_path: Path
) -> None:
    samples, epochs = 3, 3
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({
        **BASE_SWEEP, "search": {"num_samples": samples, "seed": 0},
        "scheduler": {"max_epochs": epochs, "grace_period": epochs},
        "checkpoints": {"num_to_keep": 1},
    }))
    experiment = Location.parse(f"{s3_bucket}/runs/cloud")
    first = start_driver(["launch", str(sweep), "--storage", f"{s3_bucket}/runs",
                          "--name", "cloud"], cwd=tmp_path, log=tmp_path / "launch.log")
    try:
        def one_completed() -> bool:
            ledger = _ledger(experiment)
            return bool(ledger) and any(t.status == "completed" for t in ledger.trials.values())

        wait_for(one_completed, 300, "a completed trial in the bucket")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        end_session(first)
    launch_log = (tmp_path / "launch.log").read_text()
    assert "storage s3://" in launch_log and "is shared by all 1 nodes" in launch_log, launch_log

    second = start_driver(["resume", experiment.uri], cwd=tmp_path, log=tmp_path / "resume.log")
    output = finish(second, tmp_path / "resume.log", timeout_s=420)
    assert second.returncode == 0, output[-3000:]

    ledger = Ledger.load(experiment)
    assert len(ledger.trials) == samples
    assert all(t.status == "completed" and t.epochs == epochs for t in ledger.trials.values())
    # Checkpoints are in the bucket, counted there, and num_to_keep bounds them there too.
    for trial in ledger.trials.values():
        kept = {f.split("/")[0] for f, _ in (experiment / f"trial_{trial.trial_id}/train").files()
                if f.startswith("checkpoint_") and "/" in f}
        assert trial.checkpoints == len(kept) and 1 <= len(kept) <= 2, kept
        assert trial.checkpoint_bytes > 0
    assert not (tmp_path / "runs").exists(), "nothing of the experiment on local disk"

    best_out = start_driver(["best", experiment.uri, "--json", "--download", str(tmp_path / "dl")],
                            cwd=tmp_path, log=tmp_path / "best.json")
    text = finish(best_out, tmp_path / "best.json", timeout_s=120)
    assert best_out.returncode == 0, text[-3000:]
    best = json.loads(text[text.index("{"):])
    assert best["checkpoint"].startswith(f"{experiment.uri}/trial_{best['trial_id']}/train/")
    assert best["local_checkpoint"] == str(tmp_path / "dl" / "checkpoint.ckpt")

    fetched = fetch_best(experiment.uri)
    assert fetched.value == best["value"] == max(
        t.best_epoch("val/acc", "max").metrics["val/acc"]  # type: ignore[union-attr]
        for t in ledger.trials.values())
    logged = next(e for e in ledger.trials[fetched.trial_id].history
                  if e.epoch == fetched.checkpoint_epoch).metrics["val/acc"]
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False)
    [metrics] = trainer.validate(fetched.load_model(), datamodule=fetched.load_datamodule(),
                                 verbose=False)
    assert metrics["val/acc"] == pytest.approx(logged, abs=1e-4)
