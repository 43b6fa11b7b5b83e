"""Real sweeps through Ray's documented paths: in stock-Ray mode, and with every layer's probe
failing (tuning._internals), as a Ray release that moved every private part would make it. Each
runs in a driver process of its own, on a Ray of its own whose session logs name the actors it
started."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tuning import leaderboard
from tuning._internals import probe

pytestmark = [pytest.mark.ray, pytest.mark.oldest]

# Every layer's probe fails, in the driver; its processes follow what the driver found.
BROKEN = (
    "import dataclasses, sys\n"
    "from tuning._internals import probe\n"
    "def removed():\n"
    "    raise ImportError('removed for the test')\n"
    "for name, layer in list(probe.layers().items()):\n"
    "    probe._LAYERS[name] = dataclasses.replace(layer, check=removed)\n"
    "from tuning.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@pytest.fixture
def ray_tmp() -> Iterator[Path]:
    """Ray's temporary directory for the sweep's own Ray: short, as Ray's socket paths must be."""
    path = Path(tempfile.mkdtemp(prefix="ls", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _lightsweep(args: list[str], ray_tmp: Path, cwd: Path, broken: bool = False) -> str:
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), "PYTHONPATH": str(REPO)}
    env.pop("RAY_ADDRESS", None)
    code = ["-c", BROKEN] if broken else ["-m", "tuning"]
    done = subprocess.run([sys.executable, *code, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=400)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return output


def _actors(ray_tmp: Path) -> Counter[str]:
    """The actors Ray started, by class, as its workers' logs name them."""
    names: Counter[str] = Counter()
    for log in ray_tmp.glob("ray/session_2*/logs/worker-*.out"):  # not session_latest, a link
        names.update(re.findall(r"^:actor_name:(\w+)", log.read_text(errors="replace"), re.M))
    return names


def _sweep(tmp_path: Path) -> Path:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text((REPO / "search_spaces" / "smoke.yaml").read_text()
                     .replace("num_samples: 4", "num_samples: 2")
                     .replace("max_epochs: 4", "max_epochs: 2"))
    return sweep


@pytest.mark.timeout(600)
def test_stock_ray_mode_runs_each_trial_as_rays_own_torch_trainer(
        tmp_path: Path, ray_tmp: Path) -> None:
    said = _lightsweep(["launch", str(_sweep(tmp_path)), "--storage", str(tmp_path / "runs"),
                        "--name", "stock", "--stock-ray", "--no-wandb"], ray_tmp, tmp_path)
    assert "every trial runs through Ray's documented paths only" in said
    assert "is off with the installed releases" not in said  # stock: off by choice, unwarned
    rows = leaderboard(tmp_path / "runs" / "stock")
    assert len(rows) == 2 and all(r["epochs"] >= 1 for r in rows)
    actors = _actors(ray_tmp)
    # Train's own controller, report queue and synchronization actor, one per run, as Ray runs
    # them; none of lightsweep's own.
    assert actors["TrainController"] == actors["_QueueActor"] == 2
    assert actors["SynchronizationActor"] == 2 and not actors["RenewableSynchronizationActor"]


@pytest.mark.timeout(600)
def test_with_every_probe_failing_every_command_works_with_one_warning_each(
        tmp_path: Path, ray_tmp: Path) -> None:
    experiment = tmp_path / "runs" / "moved"
    said = _lightsweep(["launch", str(_sweep(tmp_path)), "--storage", str(tmp_path / "runs"),
                        "--name", "moved", "--no-wandb"], ray_tmp, tmp_path, broken=True)
    for layer in probe.layers().values():
        if not probe.applies(layer.name):
            continue  # a Ray older than what it changes: off, unwarned
        warned = f"{layer.does} is off with the installed releases (ImportError: removed for"
        assert said.count(warned) == 1, (layer.name, said[-3000:])
    rows = leaderboard(experiment)
    assert len(rows) == 2 and {r["status"] for r in rows} <= {"completed", "stopped"}
    # Each trial went Ray's own way: its controller, its report queue.
    assert _actors(ray_tmp)["TrainController"] == 2
    resumed = _lightsweep(["resume", str(experiment)], ray_tmp, tmp_path, broken=True)
    assert "is finished" in resumed
    for command in (["leaderboard", str(experiment)], ["best", str(experiment), "--json"],
                    ["report", str(experiment), "--out", str(tmp_path / "report")]):
        out = _lightsweep(command, ray_tmp, tmp_path, broken=True)
        assert "is off with the installed releases" not in out  # readers use no private part
    assert (tmp_path / "report" / "index.html").is_file()


# What other tools print by design, kept off a default sweep's console (launch --verbose shows it).
OTHER_TOOLS = ("Configuration for experiment", "tensorboard --logdir", "A new study created",
               "Token authentication is enabled", "The `srun` command is available",
               "training worker group", "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO")


@pytest.mark.timeout(600)
def test_a_default_sweeps_console_shows_lightsweeps_lines_alone(
        tmp_path: Path, ray_tmp: Path) -> None:
    said = _lightsweep(["launch", str(_sweep(tmp_path)), "--storage", str(tmp_path / "runs"),
                        "--name", "quiet", "--no-wandb"], ray_tmp, tmp_path)
    assert "best trial" in said
    assert [line for line in said.splitlines() if any(t in line for t in OTHER_TOOLS)] == []
