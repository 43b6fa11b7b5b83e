"""The command line as a user meets it: help, exit code 2 on bad input, nothing overwritten."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SweepWriter
from tuning.cli import main
from tuning.record.location import Location


def _run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "run_tune.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "command", [[], ["launch"], ["resume"], ["leaderboard"], ["best"], ["validate"]]
)
def test_every_subcommand_has_help(command: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_bad_sweep_exits_2_naming_the_field_without_traceback(write_sweep: SweepWriter) -> None:
    path = write_sweep(space={"module.lr": {"loguniform": [0, 1]}})
    result = _run("validate", str(path))
    assert result.returncode == 2
    assert "space.module.lr: loguniform needs positive bounds" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("resources", "says"), [
    ({"gpus_per_worker": 0.3}, "resources.gpus_per_worker: 0.3 does not divide one GPU"),
    ({"gpus_per_worker": 0.5, "workers_per_trial": 2}, "NCCL refuses two ranks on one card"),
])
def test_a_gpu_share_that_cannot_work_exits_2_before_ray(
        write_sweep: SweepWriter, resources: dict[str, float], says: str) -> None:
    result = _run("validate", str(write_sweep(resources=resources)))
    assert result.returncode == 2
    assert says in result.stderr
    assert "Traceback" not in result.stderr


def test_launch_inline_with_ddp_workers_exits_2_before_ray(
        write_sweep: SweepWriter, tmp_path: Path) -> None:
    result = _run("launch", str(write_sweep()), "--trial-runner", "inline",
                  "--workers-per-trial", "2", "--storage", str(tmp_path / "runs"))
    assert result.returncode == 2
    assert "resources.trial_runner: inline fits a trial in one process" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "runs").exists()


def test_the_leaderboard_shows_the_precision_each_trial_ran(capsys) -> None:
    from tuning.cli import _leaderboard_table

    row = {"trial_id": "a", "status": "completed", "epochs": 2, "value": 0.9, "error": None,
           "config": {"trainer.precision": 16}, "checkpoints": 1, "checkpoint_bytes": 10,
           "worker_seconds": 3.0}
    table = _leaderboard_table([{**row, "ran": {"precision": "16-mixed"}},
                                {**row, "trial_id": "b", "ran": {}}], ["val/acc"])
    header, first, second = table.splitlines()
    assert header.split()[-2:] == ["ran", "config"]
    assert first.split()[-2:] == ["16-mixed", "trainer.precision=16"]
    assert second.split()[-2] == "-"  # its workers never said
    assert "ran" not in _leaderboard_table([row], ["val/acc"]).splitlines()[0].split()


def test_validate_accepts_the_shipped_sweeps() -> None:
    for sweep in sorted((REPO / "search_spaces").glob("*.yaml")):
        assert main(["validate", str(sweep)]) == 0, sweep


def test_launch_refuses_an_existing_experiment(write_sweep: SweepWriter, tmp_path: Path) -> None:
    existing = tmp_path / "runs" / "mine"
    existing.mkdir(parents=True)
    (existing / "results.txt").write_text("precious")
    code = main(["launch", str(write_sweep()), "--storage", str(tmp_path / "runs"),
                 "--name", "mine"])
    assert code == 2
    assert (existing / "results.txt").read_text() == "precious"
    assert [p.name for p in existing.iterdir()] == ["results.txt"]


def test_a_class_mistake_found_while_ray_starts_exits_2_and_stops_that_ray(
        write_sweep: SweepWriter, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    # The launch names its Ray's dashboard in this process's environment: not for later tests.
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "")
    sweep = write_sweep(module_args={"arch": "mlp", "input_shape": [8, 8], "widht": 32})
    assert main(["launch", str(sweep), "--storage", str(tmp_path / "runs")]) == 2
    assert "module_args.widht: Classifier.__init__ takes no argument 'widht'" in caplog.text
    assert not ray.is_initialized(), "the Ray started for the sweep is stopped again"
    assert not (tmp_path / "runs").exists(), "nothing is written for a refused sweep"


def test_launch_with_invalid_override_exits_2_before_ray(write_sweep: SweepWriter, tmp_path):
    result = _run("launch", str(write_sweep()), "--workers-per-trial", "3",
                  "--storage", str(tmp_path / "runs"))
    assert result.returncode == 2
    assert "global batch size 32 does not divide evenly over resources.workers_per_trial=3" in (
        result.stderr
    )
    assert not (tmp_path / "runs").exists(), "nothing is written for a refused sweep"


def test_leaderboard_best_and_resume_of_a_non_experiment_exit_2(tmp_path: Path) -> None:
    assert main(["leaderboard", str(tmp_path)]) == 2
    assert main(["best", str(tmp_path), "--json"]) == 2
    assert main(["resume", str(tmp_path)]) == 2


def test_launch_to_a_bucket_that_does_not_exist_exits_2_before_ray(
    s3_bucket: str, write_sweep: SweepWriter, caplog: pytest.LogCaptureFixture
) -> None:
    import ray

    missing = f"{s3_bucket}-missing/runs"
    assert main(["launch", str(write_sweep()), "--storage", missing]) == 2
    assert f"storage: cannot write to {missing}" in caplog.text
    assert "The specified bucket does not exist" in caplog.text
    assert not ray.is_initialized()


def test_launch_refuses_an_existing_experiment_in_a_bucket(
    s3_bucket: str, write_sweep: SweepWriter
) -> None:
    existing = Location.parse(f"{s3_bucket}/runs/mine")
    (existing / "results.txt").write_text("precious")
    code = main(["launch", str(write_sweep()), "--storage", f"{s3_bucket}/runs", "--name", "mine"])
    assert code == 2
    assert existing.files() == [("results.txt", 8)]


def test_leaderboard_and_best_of_a_uri_without_an_experiment_exit_2(
    s3_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert main(["leaderboard", f"{s3_bucket}/runs/none"]) == 2
    assert main(["best", f"{s3_bucket}/runs/none"]) == 2
    assert f"{s3_bucket}/runs/none: not a lightsweep experiment" in caplog.text


INJECTED: dict = {
    "module": "lightning_modules.injected.InjectedClassifier",
    "datamodule": "lightning_modules.datamodules.MNIST1DDataModule",
    "module_args": {
        "net": {"class_path": "lightning_modules.nets.CNN1d",
                "init_args": {"in_channels": 1, "length": 40, "num_classes": 10}},
        "optimizer": {"class_path": "torch.optim.Adam", "init_args": {"lr": 0.001}},
    },
    "space": {"model.net.init_args.width": {"int": [16, 32], "step": 16}},
    "metric": "val/acc", "mode": "max",
}


@pytest.mark.parametrize(("changes", "message"), [
    ({"module_args": {**INJECTED["module_args"], "net": {"class_path": "nowhere.Net"}}},
     r"space\.module\.net\.init_args\.width: cannot import 'nowhere\.Net' \(No module named "
     r"'nowhere'\)"),
    ({"space": {"model.net.init_args.widht": {"int": [16, 32]}}},
     r"space\.module\.net\.init_args\.widht: CNN1d\.__init__ takes no argument 'widht'\. Fix: use "
     r"one of in_channels, length, num_classes, width, depth, dropout"),
    ({"module_args": {**INJECTED["module_args"], "optimizer": 0.01}},
     r"module_args\.optimizer: InjectedClassifier\.__init__ takes a callable here, got 0\.01"),
    ({"space": {"model.optimizer": {"choice": [{"class_path": "torch.optim.SGD"}, "adam"]}}},
     r"space\.module\.optimizer: choice branch 1 \('adam'\) is not an object"),
    ({"module_args": {"net": INJECTED["module_args"]["net"]}, "space": {"model.optimizer": {
        "choice": [{"class_path": "torch.optim.SGD", "init_args": {"lr": {"uniform": [0.01, 0.1]}}},
                   {"class_path": "torch.optim.Adam", "init_args": {"betaz": {"uniform": [0, 1]}}}]}}},
     r"space\.module\.optimizer\[Adam\]\.init_args\.betaz: Adam\.__init__ takes no argument "
     r"'betaz'\. Fix: use one of params, lr, betas"),
    ({"space": {"model.net.init_args.width.x": {"int": [16, 32]}}},
     r"space\.module\.net\.init_args\.width\.x: net\.init_args\.width is None, not an object"),
    ({"config": "missing.yaml"}, r"missing\.yaml: LightningCLI config not found"),
])
def test_mistakes_in_an_injected_project_exit_2_naming_the_key(
        tmp_path: Path, changes: dict, message: str, caplog) -> None:
    import re

    import yaml

    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({**INJECTED, **changes}, sort_keys=False))
    assert main(["validate", str(path)]) == 2
    [error] = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert re.search(message, error), error


def test_a_config_value_lightning_cli_would_refuse_exits_2_with_its_message(tmp_path: Path) -> None:
    import yaml

    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"model": {"net": {
        "class_path": "lightning_modules.nets.CNN1d",
        "init_args": {"in_channels": 1, "length": 40, "num_classes": 10, "width": "wide"}}}}))
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({**INJECTED, "module_args": {}, "space": {},
                                    "config": "config.yaml"}, sort_keys=False))
    result = _run("validate", str(path))
    assert result.returncode == 2
    assert "config model / module_args: " in result.stderr and "width" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_mistyped_command_is_named_with_the_nearest_one(capsys) -> None:
    assert main(["leaderbord", "runs/x"]) == 2
    assert "unknown command 'leaderbord'. Fix: did you mean 'leaderboard'?" in capsys.readouterr().err


def test_a_sweep_file_is_still_launchs_default_argument(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "missing.yaml")]) == 2  # launched, and refused as not found
    assert "unknown command" not in capsys.readouterr().err


def test_resume_of_a_sweep_that_stopped_before_tune_saved_its_searcher_exits_2(
    write_sweep: SweepWriter, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    from tuning.config.spec import load_spec
    from tuning.record import EpochRecord, Ledger, TrialRecord

    experiment = tmp_path / "runs/full"
    record = TrialRecord("a", status="running", history=[EpochRecord(1, {"val/acc": 0.5})])
    Ledger(load_spec(write_sweep()), {"a": record}).save(Location.parse(experiment))
    # The disk filled after Tune wrote its experiment state, before its searcher's.
    (experiment / "tuner.pkl").write_bytes(b"")
    (experiment / "experiment_state-2026-01-01_00-00-00.json").write_text("{}")
    (experiment / "searcher-state-2026-01-01_00-00-00.pkl").write_bytes(b"\x80\x05")  # cut short
    assert main(["resume", str(experiment)]) == 2
    said = caplog.text
    assert "before Ray Tune first saved its searcher's state" in said
    assert "1 trials and 1 epochs stay in its leaderboard" in said
    assert f"--warm-start {experiment}" in said and "Traceback" not in said
