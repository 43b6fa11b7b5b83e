"""The best trial: which epoch, which checkpoint, and a model that loads from it."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest

from lightning_modules import Classifier, DigitsDataModule
from tests.conftest import SweepWriter
from tuning.config.spec import load_spec
from tuning.errors import SweepError
from tuning.read.results import fetch_best, leaderboard
from tuning.record import EpochRecord, Ledger, TrialRecord
from tuning.record.location import Location


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> list[str]:
    """Real Lightning checkpoints of the base sweep's model after epochs 1 and 2."""
    directory = tmp_path_factory.mktemp("ckpts")
    model = Classifier(arch="mlp", input_shape=[8, 8], width=32, depth=1, lr=0.05)
    paths = []
    for epoch in (1, 2):
        trainer = pl.Trainer(max_epochs=epoch, accelerator="cpu", logger=False,
                             enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False)
        trainer.fit(model, datamodule=DigitsDataModule(batch_size=64))
        path = directory / f"epoch{epoch}.ckpt"
        trainer.save_checkpoint(path)
        paths.append(str(path))
    return paths


def _experiment(spec, directory: Path, trials: list[TrialRecord]) -> Path:
    Ledger(spec, {t.trial_id: t for t in trials}).save(Location.parse(directory))
    return directory


def test_best_is_the_best_epoch_of_all_trials(write_sweep: SweepWriter, tmp_path, checkpoints):
    spec = load_spec(write_sweep())
    exp = _experiment(spec, tmp_path, [
        TrialRecord("a", "completed", {"module.lr": 0.05, "datamodule.batch_size": 64}, [
            EpochRecord(1, {"val/acc": 0.80}, checkpoints[0]),
            EpochRecord(2, {"val/acc": 0.70}, checkpoints[1]),
        ]),
        TrialRecord("b", "stopped", {"module.lr": 0.01}, [EpochRecord(1, {"val/acc": 0.75},
                                                                      checkpoints[1])]),
    ])
    best = fetch_best(exp)
    assert (best.trial_id, best.value, best.epoch, best.checkpoint_epoch) == ("a", 0.80, 1, 1)
    assert best.checkpoint == checkpoints[0]
    model = best.load_model()
    assert isinstance(model, Classifier)
    assert model.hparams.lr == 0.05
    datamodule = best.load_datamodule()
    assert isinstance(datamodule, DigitsDataModule)
    assert datamodule.batch_size == 64
    assert [r["trial_id"] for r in leaderboard(exp)] == ["a", "b"]


def test_falls_back_to_best_checkpoint_kept(write_sweep: SweepWriter, tmp_path, checkpoints):
    spec = load_spec(write_sweep())
    exp = _experiment(spec, tmp_path, [
        TrialRecord("a", "completed", {}, [
            EpochRecord(1, {"val/acc": 0.9}, str(tmp_path / "deleted" / "checkpoint.ckpt")),
            EpochRecord(2, {"val/acc": 0.8}, checkpoints[1]),
        ]),
    ])
    best = fetch_best(exp)
    assert (best.value, best.epoch) == (0.9, 1)
    assert (best.checkpoint, best.checkpoint_epoch) == (checkpoints[1], 2)


def test_no_result_yet_is_a_clear_error(write_sweep: SweepWriter, tmp_path: Path) -> None:
    exp = _experiment(load_spec(write_sweep()), tmp_path, [TrialRecord("a", "running")])
    with pytest.raises(SweepError, match="no trial has reported 'val/acc'"):
        fetch_best(exp)
