"""A sweep on a real 2-node Ray cluster (two raylets on this machine), joined by --address."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import BASE_SWEEP, REPO, LocalCluster, SweepWriter, can_mount_privately, local_cluster
from tuning.record import Ledger

pytestmark = [pytest.mark.ray]

# The user's own module, in the launch directory only: on a cluster it reaches the workers
# through Ray's runtime_env (working_dir), not through any path they share with the driver.
USER_MODULE = '''
from lightning_modules import Classifier


class ShippedClassifier(Classifier):
    """The user's subclass, importable only from its own directory."""
'''


@dataclass
class SharedCluster:
    """One cluster for this module's tests, none of which breaks it (starting one takes about
    15 s): its second node sees an empty directory of its own at ``private_dir``."""

    cluster: LocalCluster
    private_dir: Path | None


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedCluster]:
    directory = tmp_path_factory.mktemp("cluster")
    private_dir = directory / "storage" if can_mount_privately() else None
    if private_dir is not None:
        private_dir.mkdir()
    with local_cluster(directory, private_dir) as cluster:
        yield SharedCluster(cluster, private_dir)


@pytest.fixture
def two_node_cluster(shared: SharedCluster) -> LocalCluster:
    return shared.cluster


@pytest.mark.timeout(420)
def test_ddp_trial_spans_both_nodes_and_the_best_is_fetched(
    two_node_cluster: LocalCluster, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "my_models.py").write_text(USER_MODULE)
    sweep = {**BASE_SWEEP, "module": "my_models:ShippedClassifier",
             "space": {"module.lr": {"loguniform": [1e-2, 1e-1]}},
             "datamodule_args": {"batch_size": 64},
             "search": {"num_samples": 1, "seed": 0},
             "scheduler": {"max_epochs": 2, "grace_period": 2},
             # One CPU per node: the trial's two workers can only run one on each.
             "resources": {"workers_per_trial": 2, "cpus_per_worker": 1}}
    (project / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    storage = tmp_path / "shared"

    def lightsweep(*args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(REPO / "run_tune.py"), *args], cwd=project,
                              env=two_node_cluster.env, capture_output=True, text=True,
                              timeout=timeout_s)

    run = lightsweep("launch", "sweep.yaml", "--storage", str(storage), "--name", "spread",
                     "--address", two_node_cluster.address, timeout_s=360)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert "is shared by all 2 nodes" in output
    ledger = Ledger.load(storage / "spread")
    assert [t.status for t in ledger.trials.values()] == ["completed"]
    for trial in ledger.trials.values():
        assert all(e.metrics["world_size"] == 2 and e.metrics["num_nodes"] == 2
                   for e in trial.history), trial.history

    best = lightsweep("best", str(storage / "spread"), "--json", timeout_s=60)
    assert best.returncode == 0, best.stderr[-3000:]
    fetched = json.loads(best.stdout)
    assert Path(fetched["checkpoint"]).is_file()
    assert fetched["value"] == max(t.best_epoch("val/acc", "max").metrics["val/acc"]  # type: ignore[union-attr]
                                   for t in ledger.trials.values())


@pytest.mark.timeout(180)
def test_storage_one_node_cannot_see_is_refused_before_any_trial(
    shared: SharedCluster, two_node_cluster: LocalCluster, write_sweep: SweepWriter,
    tmp_path: Path
) -> None:
    if shared.private_dir is None:
        pytest.skip("needs root to give a node a private mount")
    storage = shared.private_dir  # the second node sees its own, empty, directory there
    run = subprocess.run(
        [sys.executable, str(REPO / "run_tune.py"), "launch", str(write_sweep()), "--storage",
         str(storage), "--name", "local-only", "--address", two_node_cluster.address],
        cwd=tmp_path, env=two_node_cluster.env, capture_output=True, text=True, timeout=150,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 2, output[-3000:]
    assert f"storage: {storage} is not shared: 1 of 2 nodes cannot read a file" in output
    assert "Fix: pass --storage a path that every node mounts" in output
    assert not (storage / "local-only").exists(), "no trial may start"
    assert list(storage.iterdir()) == [], "the marker is removed"


@pytest.mark.timeout(240)
def test_joining_a_token_cluster_without_the_token_exits_2_saying_where_it_goes(
    two_node_cluster: LocalCluster, write_sweep: SweepWriter, tmp_path: Path
) -> None:
    env = {k: v for k, v in two_node_cluster.env.items() if not k.startswith("RAY_AUTH")}
    env["RAY_gcs_server_port_wait_time_s"] = "1"  # Ray's own ~20 s of retries, cut for the test
    env["HOME"] = str(tmp_path)  # no ~/.ray/auth_token either
    run = subprocess.run(
        [sys.executable, str(REPO / "run_tune.py"), "launch", str(write_sweep()), "--storage",
         str(tmp_path / "runs"), "--address", two_node_cluster.address],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=200,
    )
    assert run.returncode == 2, run.stderr[-3000:]
    last = run.stderr.strip().splitlines()[-1]
    assert "refused this driver: it uses token authentication" in last
    assert "export RAY_AUTH_MODE=token" in last and "RAY_AUTH_TOKEN" in last
    assert "Traceback" not in run.stderr
