"""The best trial: which epoch, which checkpoint, and a model that loads from it."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest

from lightning_modules import Classifier, DigitsDataModule
from tests.conftest import SweepWriter
from tuning.config.spec import load_spec
from tuning.errors import SweepError
from tuning.read.results import fetch_best, leaderboard, pareto_front
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


def _pareto_experiment(write_sweep: SweepWriter, directory: Path, checkpoints: list[str],
                       constraints: list[str] | None = None) -> Path:
    spec = load_spec(write_sweep(metric=["val/acc", "model/params"], mode=["max", "min"],
                                 constraints=constraints or []))

    def trial(trial_id: str, status: str, *epochs: tuple[float, float, float]) -> TrialRecord:
        return TrialRecord(trial_id, status, {"module.lr": 0.05}, [
            EpochRecord(n, {"val/acc": acc, "model/params": params, "model/latency_ms": ms},
                        checkpoints[min(n, 2) - 1]) for n, (acc, params, ms) in enumerate(epochs, 1)])

    return _experiment(spec, directory, [
        # Its best epoch is the most accurate of all, but a trial's point is its last epoch.
        trial("big", "completed", (0.95, 90_000, 4.0), (0.90, 90_000, 4.0)),
        trial("small", "stopped", (0.70, 2_000, 1.0)),
        trial("mid", "completed", (0.60, 9_000, 2.0), (0.85, 9_000, 2.0)),
        trial("worse", "completed", (0.50, 50_000, 3.0), (0.80, 50_000, 3.0)),  # mid beats it
    ])


def test_several_objectives_rank_by_front_and_best_is_the_front(
        write_sweep: SweepWriter, tmp_path, checkpoints) -> None:
    exp = _pareto_experiment(write_sweep, tmp_path, checkpoints)
    rows = leaderboard(exp)
    assert [(r["trial_id"], r["front"]) for r in rows] == [
        # The front's ends first (the first objective's best leading), then its middle.
        ("big", 1), ("small", 1), ("mid", 1), ("worse", 2)]
    assert rows[0]["values"] == {"val/acc": 0.90, "model/params": 90_000}
    assert (rows[0]["epoch"], rows[0]["value"]) == (2, 0.90)
    front = pareto_front(exp)
    assert sorted(b.trial_id for b in front) == ["big", "mid", "small"]
    # One of them by an objective: the front's most accurate, or its smallest.
    assert (fetch_best(exp).trial_id, fetch_best(exp).value) == ("big", 0.90)
    smallest = fetch_best(exp, objective="model/params")
    assert (smallest.trial_id, smallest.metric, smallest.value) == ("small", "model/params", 2000)
    assert smallest.checkpoint == checkpoints[0] and smallest.checkpoint_epoch == 1
    with pytest.raises(SweepError, match=r"--objective: 'val/loss' is not an objective"):
        fetch_best(exp, objective="val/loss")


def test_a_trial_that_breaks_a_constraint_is_off_the_front(
        write_sweep: SweepWriter, tmp_path, checkpoints) -> None:
    exp = _pareto_experiment(write_sweep, tmp_path, checkpoints, ["model/latency_ms <= 3.5"])
    rows = leaderboard(exp)
    assert rows[-1]["trial_id"] == "big" and rows[-1]["front"] == 3  # after fronts 1 and 2
    assert rows[-1]["values"]["model/latency_ms"] == 4.0  # the constrained metric is shown
    assert sorted(b.trial_id for b in pareto_front(exp)) == ["mid", "small"]
    assert fetch_best(exp).trial_id == "mid"


def test_no_trial_within_the_constraints_is_said_so(
        write_sweep: SweepWriter, tmp_path, checkpoints) -> None:
    exp = _pareto_experiment(write_sweep, tmp_path, checkpoints, ["model/latency_ms <= 0.5"])
    with pytest.raises(SweepError, match=r"no trial satisfies the constraints .*Fix: relax"):
        fetch_best(exp)


def test_the_command_line_shows_the_front(write_sweep: SweepWriter, tmp_path, checkpoints,
                                          capsys) -> None:
    import json

    from tuning.cli import main

    exp = str(_pareto_experiment(write_sweep, tmp_path, checkpoints))
    assert main(["best", exp, "--json"]) == 0
    front = json.loads(capsys.readouterr().out)
    assert [m["trial_id"] for m in front] == ["big", "small", "mid"]
    assert front[1]["values"] == {"val/acc": 0.70, "model/params": 2000}
    assert main(["best", exp, "--objective", "model/params", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trial_id"] == "small"
    assert main(["leaderboard", exp]) == 0
    header, first, *_ = capsys.readouterr().out.splitlines()
    assert header.split()[:7] == ["rank", "front", "trial", "status", "epochs", "val/acc",
                                  "model/params"]
    assert first.split()[:7] == ["1", "1", "big", "completed", "2", "0.9000", "90000"]
    assert main(["best", exp, "--objective", "val/loss"]) == 2
