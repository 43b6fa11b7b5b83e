"""Whether a Ray actor can start on a worker process started ahead, with torch and Lightning
already imported: the mechanism a pool of warm Train workers would use (issue 15, item 2).

``python -m bench.warm_pool`` (about a minute) starts a local Ray of 2 CPUs and an actor whose
runtime env has its own env vars (as Train's workers do), which imports torch and Lightning: cold.
It reads that actor's runtime env, as the GCS serialized it, asks the raylet to start a worker
with exactly that env ahead of need (its ``PrestartWorkers`` call), waits, then starts the same
actor again: warm if it lands on that worker. The env's ``PYTHONPATH`` names ``bench/warm``,
whose ``sitecustomize`` imports the modules ``LIGHTSWEEP_WARM_IMPORTS`` lists as the process
starts (a ``worker_process_setup_hook`` in the actor's own env did not run in a trial of this
on Ray 2.60; a job's hook would run in every worker). Merges its figures into
``bench/results/warm_pool.json``.

Private: the GCS's actor record (``gcs_pb2.ActorTableData``, through
``ray._private.state``) and the raylet's ``PrestartWorkers`` gRPC call. Public way: none (Ray has
no Python API to start workers ahead with a given runtime env; its own prestarted workers have an
empty env, so an actor with env vars never gets one).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
from pathlib import Path
from typing import Any

import ray

from bench.results_file import merge_results

logger = logging.getLogger(__name__)
OUT = Path(__file__).parent / "results" / "warm_pool.json"
WARM_DIR = Path(__file__).parent / "warm"
IMPORTS = "torch,lightning.pytorch"


@ray.remote(num_cpus=0)
class _Worker:
    def pid_after_imports(self) -> int:
        import lightning.pytorch  # noqa: F401
        import torch  # noqa: F401

        return os.getpid()


def _start(runtime_env: dict[str, Any]) -> tuple[Any, int, float]:
    """An actor with ``runtime_env``, its pid, and the seconds until it answered with torch
    and Lightning imported."""
    start = time.perf_counter()
    actor = _Worker.options(runtime_env=runtime_env).remote()  # type: ignore[attr-defined]
    pid = ray.get(actor.pid_after_imports.remote())
    return actor, pid, time.perf_counter() - start


def _serialized_runtime_env(actor: Any) -> str:
    """The actor's runtime env as the GCS holds it (the job's merged in): what an idle worker's
    env must equal, byte for byte, for the actor to be given it."""
    from ray.core.generated import gcs_pb2

    accessor: Any = ray._private.state.state._global_state_accessor
    record = gcs_pb2.ActorTableData.FromString(  # type: ignore[attr-defined]
        accessor.get_actor_info(actor._actor_id))
    return str(record.serialized_runtime_env)


def _prestart(serialized_runtime_env: str, workers: int, keep_alive_s: int) -> None:
    """Asks this node's raylet to start ``workers`` Python workers of this job with that env."""
    from ray._private.grpc_utils import init_grpc_channel
    from ray.core.generated import common_pb2, node_manager_pb2, node_manager_pb2_grpc

    worker = ray._private.worker.global_worker
    node: Any = worker.node
    stub = node_manager_pb2_grpc.NodeManagerServiceStub(
        init_grpc_channel(f"{node.node_ip_address}:{node.node_manager_port}"))
    request = node_manager_pb2.PrestartWorkersRequest(  # type: ignore[attr-defined]
        language=common_pb2.Language.Value("PYTHON"),  # type: ignore[attr-defined]
        job_id=worker.current_job_id.binary(), keep_alive_duration_secs=keep_alive_s,
        num_workers=workers)
    request.runtime_env_info.serialized_runtime_env = serialized_runtime_env
    stub.PrestartWorkers(request, timeout=10)


def measure(rounds: int, settle_s: float) -> dict[str, Any]:
    runtime_env = {"env_vars": {"PYTHONPATH": str(WARM_DIR), "LIGHTSWEEP_WARM_IMPORTS": IMPORTS,
                                "TRAIN_LIKE": "1"}}
    cold, warm, landed = [], [], 0
    for _ in range(rounds):
        actor, _, seconds = _start(runtime_env)
        cold.append(seconds)
        env = _serialized_runtime_env(actor)
        ray.kill(actor)
        _prestart(env, workers=1, keep_alive_s=120)
        time.sleep(settle_s)  # the worker starts and imports, as a pool would ahead of need
        idle = _idle_workers()
        actor, pid, seconds = _start(runtime_env)
        warm.append(seconds)
        landed += pid in idle
        ray.kill(actor)
        time.sleep(1)
    return {
        "rounds": rounds, "settle_s": settle_s, "imports": IMPORTS,
        "cold_start_s": {"median": statistics.median(cold), "min": min(cold), "max": max(cold)},
        "prestarted_start_s": {"median": statistics.median(warm), "min": min(warm),
                               "max": max(warm)},
        "landed_on_prestarted_worker": landed,
        "ray": ray.__version__,
    }


def _idle_workers() -> set[int]:
    """Pids of Ray's idle workers on this machine."""
    pids = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().startswith(b"ray::IDLE"):
                pids.add(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settle-s", type=float, default=15.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"JOB_LIKE": "1"}})
    try:
        figures = measure(args.rounds, args.settle_s)
    finally:
        ray.shutdown()
    merge_results(OUT, figures)
    cold, warm = figures["cold_start_s"], figures["prestarted_start_s"]
    logger.info("cold: %.2f s (%.2f-%.2f); on a worker started ahead: %.2f s (%.2f-%.2f); "
                "landed on it %d of %d", cold["median"], cold["min"], cold["max"],
                warm["median"], warm["min"], warm["max"],
                figures["landed_on_prestarted_worker"], figures["rounds"])


if __name__ == "__main__":
    main()
