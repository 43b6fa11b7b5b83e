"""Shared fixtures: sweep files written from a base that is valid, and one embedded Ray."""

from __future__ import annotations

import contextlib
import copy
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

# A valid, fast sweep: scikit-learn digits, a small MLP. W&B off (offline W&B costs 2.5
# CPU-seconds a trial): the tests that read its runs turn it on.
BASE_SWEEP: dict[str, Any] = {
    "module": "lightning_modules.classifier:Classifier",
    "datamodule": "lightning_modules.datamodules:DigitsDataModule",
    "module_args": {"arch": "mlp", "input_shape": [8, 8], "width": 32, "depth": 1},
    "space": {
        "module.lr": {"loguniform": [1e-3, 1e-1]},
        "datamodule.batch_size": {"choice": [32, 64]},
    },
    "metric": "val/acc",
    "mode": "max",
    "search": {"num_samples": 4, "seed": 0},
    "scheduler": {"max_epochs": 4, "grace_period": 1, "reduction_factor": 2},
    "resources": {"workers_per_trial": 1},
    "wandb": {"enabled": False},
}

SweepWriter = Callable[..., Path]


@pytest.fixture
def sweep_data() -> dict[str, Any]:
    return copy.deepcopy(BASE_SWEEP)


@pytest.fixture
def write_sweep(tmp_path: Path) -> SweepWriter:
    """Writes a sweep file: the base, with top-level keys replaced (None removes a key)."""

    def write(data: dict[str, Any] | None = None, **changes: Any) -> Path:
        content = copy.deepcopy(BASE_SWEEP if data is None else data)
        for key, value in changes.items():
            if value is None:
                content.pop(key, None)
            else:
                content[key] = value
        path = tmp_path / "sweep.yaml"
        path.write_text(yaml.safe_dump(content, sort_keys=False))
        return path

    return write


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """One embedded Ray (2 CPUs, like CI) for the integration tests; this test process owns it.

    Started the way lightsweep starts its own, from the repository root so that workers import
    ``tests.user_modules``.
    """
    import ray

    from tuning.driver.sweep import init_ray

    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        init_ray(None, num_cpus=2)
    finally:
        os.chdir(cwd)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def mnist1d_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``data_dir`` with MNIST-1D generated once for the session, as a user's holds it after
    a first sweep (generating it takes 4-8 s of a trial's worker)."""
    from lightning_modules.datamodules import MNIST1DDataModule

    path = tmp_path_factory.mktemp("data")
    MNIST1DDataModule(data_dir=str(path)).prepare_data()
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalCluster:
    """A Ray cluster of two nodes on this machine: a head and a second raylet, each started by
    ``ray start --block`` in its own process session, so the test can end each by PID alone.

    Attributes:
        address: The head's GCS address, for ``--address``.
        env: What a driver needs to join it (token authentication).
    """

    address: str
    env: dict[str, str]
    head: subprocess.Popen[bytes]
    node: subprocess.Popen[bytes]

    def lose_node(self) -> None:
        """Kills the second node: its raylet and every worker process on it, at once."""
        _kill_session(self.node)


def _kill_session(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def _ray_start(
    args: list[str], env: dict[str, str], log: Path, private_dir: Path | None = None,
) -> subprocess.Popen[bytes]:
    # Every port named: the default ones would collide with another Ray on this host.
    ports = ["--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--metrics-export-port", "--runtime-env-agent-port"]
    command = [str(Path(sys.executable).parent / "ray"), "start", "--block",
               "--disable-usage-stats", *args, *(f"{p}={free_port()}" for p in ports)]
    if private_dir is not None:
        # A node of its own file system view: an empty tmpfs over private_dir, seen only by it
        # and its workers, as a path that is local to each machine of a real cluster.
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   f'mount -t tmpfs tmpfs "{private_dir}" && exec "$@"', "sh", *command]
    with open(log, "ab") as out:
        return subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _wait_for_nodes(address: str, env: dict[str, str], count: int, timeout_s: float) -> None:
    probe = ("import ray, sys, time\n"
             f"ray.init(address='{address}', logging_level='ERROR')\n"
             f"deadline = time.monotonic() + {timeout_s}\n"
             f"while sum(n['Alive'] for n in ray.nodes()) < {count}:\n"
             "    if time.monotonic() > deadline: sys.exit(1)\n"
             "    time.sleep(0.5)\n")
    subprocess.run([sys.executable, "-c", probe], env=env, check=True, timeout=timeout_s + 60,
                   capture_output=True)


@contextlib.contextmanager
def local_cluster(directory: Path, private_dir: Path | None = None) -> Iterator[LocalCluster]:
    """Head (runs trial drivers) and a second node, 1 CPU each, with token authentication;
    its log in ``directory``.

    With ``private_dir``, the second node does not share that directory with the head (root
    only: it mounts a tmpfs in a mount namespace); the caller skips where ``unshare`` fails.
    """
    port, dashboard = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32),
               # The State API (Train's placement-group cleanup) must find this cluster's
               # dashboard, not another Ray's on the same host.
               RAY_API_SERVER_ADDRESS=f"http://127.0.0.1:{dashboard}")
    address = f"127.0.0.1:{port}"
    log = directory / "cluster.log"
    head = _ray_start(["--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=true",
                       f"--dashboard-port={dashboard}", f"--ray-client-server-port={free_port()}"],
                      env, log)
    node = None
    try:
        _wait_for_nodes(address, env, 1, timeout_s=60)
        node = _ray_start([f"--address={address}", "--num-cpus=1"], env, log, private_dir)
        _wait_for_nodes(address, env, 2, timeout_s=60)
        yield LocalCluster(address, env, head, node)
    finally:
        for process in (node, head):
            if process is not None:
                _kill_session(process)
        # `ray start --head` named this cluster the host's current one; `ray stop` would unname it.
        current = Path(tempfile.gettempdir(), "ray", "ray_current_cluster")
        if current.is_file() and current.read_text().strip().endswith(f":{port}"):
            current.unlink()


def can_mount_privately() -> bool:
    """Whether this process may give a node a mount of its own (root, or a user namespace)."""
    return subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode == 0


@pytest.fixture
def two_node_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """A cluster of this test's own (:func:`local_cluster`), for a test that breaks it."""
    with local_cluster(tmp_path) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """An S3 server (moto) on a free port of this machine; its endpoint URL."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new, empty bucket, with the environment a user sets to reach it: ``s3://<bucket>``.

    Ray workers started after this inherit the environment, as a user's workers would.
    """
    import boto3

    env = {"AWS_ENDPOINT_URL": s3_server, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # Unique per test: clients are cached per bucket, and no test sees another's objects.
    bucket = f"lightsweep-{secrets.token_hex(6)}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return f"s3://{bucket}"
