from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SweepWriter
from tuning.config.spec import load_spec
from tuning.driver.sweep import runtime_env


def test_local_ray_workers_import_from_the_launch_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = runtime_env(None)
    assert env["env_vars"]["PYTHONPATH"].split(":") == [str(tmp_path), "/elsewhere"]
    assert "working_dir" not in env  # nothing to ship: workers share this file system


def test_cluster_gets_the_launch_directory_and_lightsweep_shipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = runtime_env("10.0.0.1:6379")
    assert env["working_dir"] == str(tmp_path)
    assert sorted(Path(p).name for p in env["py_modules"]) == ["lightning_modules", "tuning"]
    assert {".venv", ".git", "runs"} <= set(env["excludes"])


def test_launching_from_the_repository_ships_its_packages_once(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    env = runtime_env("10.0.0.1:6379")
    assert env["working_dir"] == str(REPO) and "py_modules" not in env


@pytest.mark.parametrize("address", [None, "10.0.0.1:6379"])
def test_wandb_and_lightsweep_settings_reach_the_workers(
    address: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("LIGHTSWEEP_DATA_DIR", "/data")
    monkeypatch.setenv("UNRELATED_SECRET", "x")
    env_vars = runtime_env(address)["env_vars"]
    assert env_vars["WANDB_MODE"] == "offline" and env_vars["LIGHTSWEEP_DATA_DIR"] == "/data"
    assert "UNRELATED_SECRET" not in env_vars


def test_ray_train_polls_trials_often_unless_the_environment_says_otherwise(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", raising=False)
    assert runtime_env(None)["env_vars"]["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] == "0.2"
    monkeypatch.setenv("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "1.5")
    assert runtime_env("10.0.0.1:6379")["env_vars"]["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] == "1.5"


def test_preemption_watcher_and_autoscaler_requests_are_off_on_a_local_ray_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", raising=False)
    monkeypatch.delenv("LIGHTSWEEP_AUTOSCALER_REQUESTS", raising=False)
    local = runtime_env(None)["env_vars"]
    assert local["RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"] == "0"
    assert local["LIGHTSWEEP_AUTOSCALER_REQUESTS"] == "0"
    # A cluster's nodes can be preempted (spot instances) and added by its autoscaler: Train's
    # defaults stay.
    cluster = runtime_env("10.0.0.1:6379")["env_vars"]
    assert "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER" not in cluster
    assert "LIGHTSWEEP_AUTOSCALER_REQUESTS" not in cluster
    monkeypatch.setenv("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "1")
    assert runtime_env(None)["env_vars"]["RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"] == "1"


def test_baseline_search_is_random_draws_run_to_the_end(write_sweep: SweepWriter) -> None:
    import optuna
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from tuning.driver.sweep import build_tuner
    from tuning.record.location import Location

    spec = load_spec(write_sweep(search={"num_samples": 4, "sampler": "random"},
                                 scheduler={"name": "fifo", "max_epochs": 3}))
    config = build_tuner(spec, Location.parse("/tmp/never-written"), 1)._local_tuner._tune_config
    # Each within the budget's gate (tuning.driver.budget), a budget or not.
    assert type(config.scheduler.inner) is FIFOScheduler
    assert isinstance(config.search_alg.inner._sampler, optuna.samplers.RandomSampler)
    tuned = build_tuner(load_spec(write_sweep()), Location.parse("/tmp/never-written"), 1)
    config = tuned._local_tuner._tune_config
    assert isinstance(config.scheduler.inner, ASHAScheduler)
    assert isinstance(config.search_alg.inner._sampler, optuna.samplers.TPESampler)


def test_trials_reuse_processes_and_inline_ones_take_their_workers_resources_and_tune_retries(
        write_sweep: SweepWriter) -> None:
    from tuning.driver.sweep import TRIAL_DRIVER_RESOURCES, build_tuner, trial_resources
    from tuning.record.location import Location

    train = load_spec(write_sweep(failures={"max_retries": 3}))
    inline = train.with_overrides({"resources.trial_runner": "inline",
                                   "resources.cpus_per_worker": 2})
    # a driver holds no CPU, and runs on the head node
    assert trial_resources(train.resources) == {**TRIAL_DRIVER_RESOURCES,
                                                "node:__internal_head__": 0.001}
    assert trial_resources(inline.resources) == {"CPU": 2.0}  # inline, the trial is its worker
    gpu = inline.with_overrides({"resources.gpus_per_worker": 0.5})
    assert trial_resources(gpu.resources) == {"CPU": 2.0, "GPU": 0.5}
    for spec, reuse in ((train, True), (inline, True)):
        tuner = build_tuner(spec, Location.parse("/tmp/never-written"), 1)._local_tuner
        assert tuner._tune_config.reuse_actors is reuse
        # Tune restarts a trial whose process died (a trial whose code raised fails its retry
        # at once: tuning.trial.driver); a Train trial retries its own dead workers too.
        assert tuner._run_config.failure_config.max_failures == 3
        kept = tuner._run_config.checkpoint_config
        assert (kept.num_to_keep, kept.checkpoint_score_attribute) == (
            spec.checkpoints.num_to_keep, "val/acc")
    fail_fast = inline.with_overrides({"failures.fail_fast": True})
    tuner = build_tuner(fail_fast, Location.parse("/tmp/never-written"), 1)._local_tuner
    assert tuner._run_config.failure_config.max_failures == 0  # Tune allows no retry then


def test_a_local_ray_starts_its_dashboard_only_where_trains_cleaner_asks_it(
        write_sweep: SweepWriter, monkeypatch) -> None:
    from tuning._internals.placement_groups import PLACEMENT_GROUPS_ENV
    from tuning.driver.sweep import local_ray_options, runtime_env

    train = load_spec(write_sweep())
    inline = train.with_overrides({"resources.trial_runner": "inline"})
    monkeypatch.delenv(PLACEMENT_GROUPS_ENV, raising=False)
    # The sweep's driver removes the placement groups of dead trial processes: no cleaner in
    # the trials (they are told so), and no dashboard for it to ask.
    assert runtime_env(None)["env_vars"][PLACEMENT_GROUPS_ENV] == "driver"
    assert runtime_env("10.0.0.1:6379")["env_vars"][PLACEMENT_GROUPS_ENV] == "driver"
    assert local_ray_options(train) == {"include_dashboard": False}
    assert local_ray_options(inline) == {"include_dashboard": False}
    # A Ray Client driver has no GCS connection to look with: Train's cleaners do it.
    assert PLACEMENT_GROUPS_ENV not in runtime_env("ray://10.0.0.1:10001")["env_vars"]
    # Left to Train's cleaner by the user: a Train sweep's local Ray keeps its dashboard.
    monkeypatch.setenv(PLACEMENT_GROUPS_ENV, "train")
    assert runtime_env(None)["env_vars"][PLACEMENT_GROUPS_ENV] == "train"
    assert local_ray_options(train) == {}, "Train's placement-group cleaner asks its State API"
    assert local_ray_options(inline) == {"include_dashboard": False}


def _fresh_python(script: str) -> str:
    """What ``script`` prints, run in a fresh interpreter from the repository (as a driver)."""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_sweeps_driver_never_imports_torch_or_lightning_to_check_the_users_classes() -> None:
    # The check imports the user's classes (0.4 GB with torch and Lightning) in a process of
    # its own; the driver, which holds the sweep to its end, needs neither.
    script = (
        "import sys\n"
        "from tuning.config.spec import load_spec\n"
        "from tuning.driver.class_check import ClassCheck\n"
        "with ClassCheck(load_spec('search_spaces/smoke.yaml', {}), local=True) as check:\n"
        "    check.wait()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'lightning', 'pytorch_lightning', 'lightning_modules')))\n"
    )
    assert _fresh_python(script) == "[]"


def test_shipping_lightsweeps_packages_to_a_cluster_imports_none_of_them() -> None:
    # lightning_modules' __init__ imports Lightning: the driver only needs where it lies.
    script = (
        "import sys\n"
        "from tuning.driver.sweep import runtime_env\n"
        "runtime_env('10.0.0.1:6379')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'lightning', 'lightning_modules')))\n"
    )
    assert _fresh_python(script) == "[]"


def test_tensorboard_files_are_written_without_torch_in_the_sweeps_driver(
        tmp_path: Path) -> None:
    # tensorboardX imports torch where it is installed; the driver imports it with torch
    # hidden, and Tune's logger, given a trial's numbers, still writes TensorBoard's event file.
    script = (
        "import sys\n"
        "from tuning.driver.imports import import_tensorboardx_without_torch\n"
        "import_tensorboardx_without_torch()\n"
        "from tensorboardX import SummaryWriter\n"
        f"writer = SummaryWriter({str(tmp_path)!r})\n"
        "writer.add_scalar('val/acc', 0.5, 1)\n"
        "writer.close()\n"
        "print('torch' in sys.modules)\n"
    )
    assert _fresh_python(script) == "False"
    assert list(tmp_path.glob("events.out.tfevents.*")), "an event file"
    # torch stays importable afterwards.
    assert _fresh_python(
        "from tuning.driver.imports import import_tensorboardx_without_torch\n"
        "import_tensorboardx_without_torch()\nimport torch\nprint(torch.tensor(1.0).item())"
    ) == "1.0"
