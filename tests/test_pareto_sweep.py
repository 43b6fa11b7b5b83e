"""A real two-objective sweep on an embedded Ray: accuracy against size, under a constraint.

Optuna's multi-objective TPE proposes, inline trials fit and measure their own size and latency,
ASHA's rungs stop by Pareto rank; the record, Optuna's study and the loaded model agree.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from lightning_modules import Classifier
from tests.scoring import validate
from tuning import fetch_best, launch, leaderboard
from tuning.read.results import pareto_front
from tuning.record.pareto import dominates, minimized
from tuning.record.study_file import STUDY_FILE

pytestmark = [pytest.mark.ray]

MAX_EPOCHS = 4
LATENCY_BOUND = 50.0  # ms: a digits MLP's forward pass takes a fraction of one


@pytest.fixture(scope="module")
def pareto_sweep(ray_session, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pareto")
    sweep = root / "sweep.yaml"
    sweep.write_text(
        "module: lightning_modules.classifier:Classifier\n"
        "datamodule: lightning_modules.datamodules:DigitsDataModule\n"
        "module_args: {arch: mlp, input_shape: [8, 8], depth: 1}\n"
        "space:\n"
        "  module.lr: {loguniform: [1e-3, 3e-1]}\n"
        "  module.width: {int: [2, 64]}\n"
        "metric: [val/acc, model/params]\nmode: [max, min]\n"
        f"constraints: ['model/latency_ms <= {LATENCY_BOUND}']\n"
        "search: {num_samples: 6, seed: 0}\n"
        f"scheduler: {{max_epochs: {MAX_EPOCHS}, grace_period: 1, reduction_factor: 2}}\n"
        "resources: {trial_runner: inline}\n"
        "wandb: {enabled: false}\n"
    )
    return Path(launch(sweep, storage=str(root / "runs"), name="pareto").path.uri)


def _point(row: dict) -> tuple[float, ...]:
    return minimized([row["values"]["val/acc"], row["values"]["model/params"]], ["max", "min"])


@pytest.mark.timeout(400)
def test_fronts_are_pareto_fronts_of_what_the_trials_measured(pareto_sweep: Path) -> None:
    rows = leaderboard(pareto_sweep)
    assert len(rows) == 6 and all(r["values"] for r in rows)
    for row in rows:
        # The size lightsweep measured is the model's.
        width = row["config"]["module.width"]
        model = Classifier(arch="mlp", input_shape=[8, 8], width=width, depth=1)
        assert row["values"]["model/params"] == sum(p.numel() for p in model.parameters())
        assert 0 < row["values"]["model/latency_ms"] <= LATENCY_BOUND
    first = [r for r in rows if r["front"] == 1]
    assert first and all(not dominates(_point(o), _point(r)) for r in first for o in rows)
    for row in rows:
        if row["front"] > 1:
            assert any(dominates(_point(o), _point(row)) for o in rows
                       if o["front"] == row["front"] - 1)
    # Rungs stopped some trials early, and those trained fewer epochs.
    stopped = [r for r in rows if r["status"] == "stopped"]
    assert stopped and all(r["epochs"] < MAX_EPOCHS for r in stopped)


@pytest.mark.timeout(60)
def test_optuna_is_told_each_trial_as_it_ended(pareto_sweep: Path) -> None:
    storage = f"sqlite:///{pareto_sweep / STUDY_FILE}"
    [summary] = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE,
                                optuna.study.StudyDirection.MINIMIZE]
    told = {t.user_attrs["trial_id"]: t for t in study.trials}
    for row in leaderboard(pareto_sweep):
        trial = told[row["trial_id"]]
        values = row["values"]
        if row["status"] == "completed":
            assert trial.state.name == "COMPLETE"
            assert trial.values == [values["val/acc"], values["model/params"]]
        else:
            assert trial.state.name == "PRUNED"
            assert trial.user_attrs["last_values"]["val/acc"] == values["val/acc"]
        assert trial.constraints == {
            f"model/latency_ms <= {LATENCY_BOUND:g}": values["model/latency_ms"] - LATENCY_BOUND}


@pytest.mark.timeout(120)
def test_the_fronts_smallest_model_loads_and_reproduces_its_accuracy(pareto_sweep: Path) -> None:
    front = pareto_front(pareto_sweep)
    smallest = fetch_best(pareto_sweep, objective="model/params")
    assert smallest.trial_id in {b.trial_id for b in front}
    assert smallest.value == min(b.values["model/params"] for b in front if b.values)
    model = smallest.load_model()
    assert sum(p.numel() for p in model.parameters()) == smallest.value
    metrics = validate(model, smallest.load_datamodule())
    assert smallest.checkpoint_epoch == smallest.epoch
    assert metrics["val/acc"] == pytest.approx(smallest.values["val/acc"], abs=1e-6)
