"""What Train's synchronization actor costs a run: started fresh, as Ray does per run, against
renewed, as lightsweep does for every run of a trial process after its first.

``python -m bench.sync_actor`` (half a minute) starts a local Ray of 2 CPUs, starts and kills
Ray's ``SynchronizationActor`` ``--rounds`` times, timing each to its first answer and reading its
process's CPU time and PSS, then renews lightsweep's as many times. It merges its figures into
``bench/results/sync_actor.json``.
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

from bench.memory import pss_bytes
from bench.results_file import merge_results

logger = logging.getLogger(__name__)
OUT = Path(__file__).parent / "results" / "sync_actor.json"


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pid(actor: Any) -> int:
    return int(ray.get(actor.__ray_call__.remote(lambda self: os.getpid())))


def measure(rounds: int) -> dict[str, Any]:
    """Fresh and renewed synchronization actors, ``rounds`` of each, on an idle local Ray."""
    from ray.train.v2._internal.execution.checkpoint import sync_actor

    from tuning._internals.controller import _ReusedSynchronizationActor

    ray_actor: Any = sync_actor.SynchronizationActor  # an actor class: Ray's stubs say a plain one

    warm = ray_actor.remote()  # Ray's own first start-up is not the actor's
    ray.get(warm.get_counter.remote())
    ray.kill(warm)
    fresh_s, cpu_s, pss_gb = [], [], []
    for _ in range(rounds):
        time.sleep(1)  # the killed one's process gone
        start = time.perf_counter()
        actor = ray_actor.remote(timeout_s=60, warn_interval_s=60)
        ray.get(actor.get_counter.remote())
        fresh_s.append(time.perf_counter() - start)
        pid = _pid(actor)
        cpu_s.append(_cpu_seconds(pid))
        pss_gb.append(pss_bytes(pid) / 1e9)
        ray.kill(actor)
    reused = _ReusedSynchronizationActor()
    ray.get(reused.options().remote(timeout_s=60, warn_interval_s=60).get_counter.remote())
    renewed_s = []
    for _ in range(rounds):
        start = time.perf_counter()
        actor = reused.options().remote(timeout_s=60, warn_interval_s=60)
        ray.get(actor.get_counter.remote())
        renewed_s.append(time.perf_counter() - start)
    return {
        "rounds": rounds,
        "fresh_to_first_answer_s": {"median": statistics.median(fresh_s), "min": min(fresh_s),
                                    "max": max(fresh_s)},
        "fresh_process_cpu_s": statistics.median(cpu_s),
        "fresh_process_pss_gb": statistics.median(pss_gb),
        "renewed_to_first_answer_s": {"median": statistics.median(renewed_s),
                                      "min": min(renewed_s), "max": max(renewed_s)},
        "ray": ray.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        figures = measure(args.rounds)
    finally:
        ray.shutdown()
    merge_results(OUT, figures)
    fresh, renewed = figures["fresh_to_first_answer_s"], figures["renewed_to_first_answer_s"]
    logger.info("fresh: %.2f s to its first answer (%.2f-%.2f), %.2f CPU-s, %.3f GB PSS; "
                "renewed: %.1f ms (%.1f-%.1f)", fresh["median"], fresh["min"], fresh["max"],
                figures["fresh_process_cpu_s"], figures["fresh_process_pss_gb"],
                renewed["median"] * 1e3, renewed["min"] * 1e3, renewed["max"] * 1e3)


if __name__ == "__main__":
    main()
