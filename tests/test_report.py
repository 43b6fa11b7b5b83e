"""The sweep report: an HTML file and its pictures, carrying every trial of the experiment."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import BASE_SWEEP
from tuning.cli import main
from tuning.config.spec import SweepSpec
from tuning.read.report import (
    asha_rungs,
    parameter_importances,
    plot_learning_curves,
    plot_parallel_coordinates,
    write_report,
)
from tuning.record import EpochRecord, Ledger, TrialRecord
from tuning.record.location import Location

PNG = b"\x89PNG\r\n\x1a\n"


def _trial(trial_id: str, status: str, values: list[float], lr: float) -> TrialRecord:
    return TrialRecord(trial_id, status=status, config={"module.lr": lr,
                                                       "datamodule.batch_size": 32},
                       history=[EpochRecord(epoch=n, metrics={"val/acc": v}, seconds=1.0)
                                for n, v in enumerate(values, start=1)])


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    spec = SweepSpec.model_validate({**BASE_SWEEP, "search": {"num_samples": 8, "seed": 0},
                                     "scheduler": {"max_epochs": 4, "grace_period": 1,
                                                   "reduction_factor": 2}})
    trials = [
        _trial("best", "completed", [0.5, 0.7, 0.8, 0.9], 0.01),
        _trial("good", "completed", [0.5, 0.6, 0.7, 0.75], 0.02),
        _trial("weak", "stopped", [0.2], 0.08),
        _trial("late", "stopped", [0.4, 0.5], 0.05),
        _trial("boom", "errored", [], 0.09),
        _trial("next", "running", [0.45], 0.03),
    ]
    path = tmp_path / "runs" / "try"
    (path / "lightsweep").mkdir(parents=True)
    Ledger(spec, {t.trial_id: t for t in trials}).save(Location.parse(path))
    return path


def test_asha_rungs_are_where_trials_are_compared() -> None:
    spec = SweepSpec.model_validate({**BASE_SWEEP, "scheduler": {
        "max_epochs": 30, "grace_period": 3, "reduction_factor": 3}})
    assert asha_rungs(spec) == [3, 9, 27]
    fifo = spec.with_overrides({"scheduler.name": "fifo"})
    assert asha_rungs(fifo) == []


def test_report_is_one_html_file_with_its_pictures_beside_it(experiment: Path) -> None:
    index = write_report(str(experiment))
    assert index == experiment / "report" / "index.html"
    page = index.read_text()
    for picture in ("learning_curves.png", "parallel_coordinates.png", "importances.png",
                    "epochs.png"):
        assert f'src="{picture}"' in page
        assert (index.parent / picture).read_bytes().startswith(PNG)
    # The leaderboard carries every trial, best first; the best trial is named.
    rows = [line for line in page.splitlines() if line.startswith("<tr><td>")]
    assert [r.split("</td><td>")[1] for r in rows] == ["best", "good", "late", "next", "weak",
                                                       "boom"]
    assert "Best trial best</b>: val/acc = 0.9000 at epoch 4" in page
    assert "saved 5 epochs" in page  # weak: 3, late: 2
    assert not list(index.parent.glob("*.tmp"))


def test_pictures_carry_every_trial_with_results(experiment: Path, tmp_path: Path) -> None:
    ledger = Ledger.load(str(experiment))
    with_results = {"best", "good", "weak", "late", "next"}
    assert set(plot_learning_curves(ledger, tmp_path / "c.png")) == with_results
    assert set(plot_parallel_coordinates(ledger, tmp_path / "p.png")) == with_results


def test_importances_fall_back_to_the_first_rung_when_few_trials_completed(
    experiment: Path,
) -> None:
    found = parameter_importances(Ledger.load(str(experiment)))
    assert found is not None
    importances, basis = found
    assert set(importances) == {"module.lr", "datamodule.batch_size"}
    assert sum(importances.values()) == pytest.approx(1.0)
    assert basis == "val/acc at epoch 1 of 4 trials (too few completed)"


def test_report_command_prints_where_it_wrote(experiment: Path, tmp_path: Path, capsys) -> None:
    assert main(["report", str(experiment), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "out" / "index.html")
    assert main(["report", str(tmp_path / "nothing")]) == 2


def test_report_command_prints_nothing_but_where_it_wrote(experiment: Path, tmp_path: Path,
                                                         capfd) -> None:
    assert main(["report", str(experiment), "--out", str(tmp_path / "r")]) == 0
    out, err = capfd.readouterr()
    assert out.strip() == str(tmp_path / "r" / "index.html")
    assert "new study created" not in err  # Optuna's INFO line for the importances' study


def test_a_pbt_sweeps_report_draws_each_trials_schedule(tmp_path: Path) -> None:
    spec = SweepSpec.model_validate({**BASE_SWEEP, "scheduler": {
        "name": "pbt", "max_epochs": 4, "perturbation_interval": 2}})
    leader = _trial("leader", "completed", [0.5, 0.7, 0.8, 0.9], 0.01)
    moved = _trial("moved", "completed", [0.2, 0.3, 0.72, 0.85], 0.012)
    exploit = {"generation": 1, "donor": "leader", "epoch": 2, "checkpoint": "/c",
               "values": {"module.lr": 0.012, "datamodule.batch_size": 32},
               "before": {"module.lr": 0.0001, "datamodule.batch_size": 64}}
    moved.lineage = [exploit]
    moved.config = {**moved.config, "pbt": exploit}
    path = tmp_path / "pbt"
    Ledger(spec, {"leader": leader, "moved": moved}).save(Location.parse(path))
    index = write_report(str(path))
    page = index.read_text()
    assert "Population-based training" in page and "'pbt'" not in page
    assert (index.parent / "pbt_schedules.png").read_bytes().startswith(PNG)


def test_a_two_objective_sweeps_report_draws_its_front(tmp_path: Path) -> None:
    spec = SweepSpec.model_validate({**BASE_SWEEP, "metric": ["val/acc", "model/params"],
                                     "mode": ["max", "min"],
                                     "search": {"num_samples": 6, "seed": 0},
                                     "scheduler": {"max_epochs": 2, "grace_period": 1}})

    def trial(trial_id: str, status: str, acc: list[float], params: float) -> TrialRecord:
        record = _trial(trial_id, status, acc, 0.01)
        for entry in record.history:
            entry.metrics["model/params"] = params
        return record

    trials = [trial("big", "completed", [0.7, 0.9], 9000), trial("small", "stopped", [0.6], 100),
              trial("worse", "completed", [0.5, 0.55], 9500), trial("mid", "completed",
                                                                    [0.6, 0.8], 3000),
              trial("rival", "completed", [0.7, 0.85], 3500)]
    path = tmp_path / "pareto"
    Ledger(spec, {t.trial_id: t for t in trials}).save(Location.parse(path))
    index = write_report(str(path))
    page = index.read_text()
    assert "<h2>Pareto front</h2><p>4 trials" in page  # big, rival, mid, small; not worse
    assert "val/acc (max), model/params (min)" in page
    assert "<th>front</th>" in page and "<th>model/params</th>" in page
    assert (index.parent / "pareto_front.png").read_bytes().startswith(PNG)
    importances = parameter_importances(Ledger.load(path))
    assert importances is not None and "(the first objective)" in importances[1]
