"""The pool of Train workers started ahead (:mod:`tuning.trial.warm_pool`), measured twice.

1. Its mechanism (``python -m bench.warm_pool``, about a minute): a local Ray of 2 CPUs and an
   actor whose runtime env has its own env vars (as Train's workers do), which imports the fit's
   modules: cold. The actor's runtime env, as the GCS serialized it, then goes to the raylet,
   which starts a worker with exactly that env ahead of need (``PrestartWorkers``, through
   :func:`tuning._internals.prestart.prestart_workers`); after a wait, the same actor again: warm if it lands
   on that worker. The env's ``PYTHONPATH`` names ``tuning/trial/warm``, whose ``sitecustomize``
   imports the modules ``LIGHTSWEEP_WARM_IMPORTS`` lists as the process starts. Also the PSS
   that idle worker holds.
2. Its use (``--sweeps N``, about 4 minutes a round; ``--rounds 0`` skips the mechanism): the
   bench workload's sweep run one trial at a time, so that a CPU is free while a trial fits,
   with ``resources.warm_workers`` 0 and 1 alternated, each sweep in a fresh process
   (``--epochs E``: every trial E epochs, FIFO, fits long enough to hide a worker's imports;
   ``--cpus-per-worker``): of the trials after the first, the median overhead (a trial's wall
   time less its fit's) and fit time, and how many of their workers were started ahead.

Merges its figures into ``bench/results/warm_pool.json``. Private: the GCS's actor record
(``gcs_pb2.ActorTableData``, through ``ray._private.state``). Public way: none.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ray

from bench.memory import pss_bytes
from bench.results_file import merge_results
from tuning._internals.prestart import prestart_workers

logger = logging.getLogger(__name__)
OUT = Path(__file__).parent / "results" / "warm_pool.json"
WARM_DIR = Path(__file__).parents[1] / "tuning" / "trial" / "warm"
# What a Train worker of the bench's workload imports ahead (tuning.trial.warm_pool.warm_imports).
IMPORTS = "tuning.trial.worker,bench.timed,lightning_modules.datamodules"
SEQUENTIAL_TRIALS = 6


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


def measure(rounds: int, settle_s: float) -> dict[str, Any]:
    runtime_env = {"env_vars": {"PYTHONPATH": f"{WARM_DIR}{os.pathsep}{WARM_DIR.parents[2]}",
                                "LIGHTSWEEP_WARM_IMPORTS": IMPORTS,
                                "TRAIN_LIKE": "1"}}
    cold, warm, landed = [], [], 0
    pss: list[int] = []
    for _ in range(rounds):
        actor, _, seconds = _start(runtime_env)
        cold.append(seconds)
        env = _serialized_runtime_env(actor)
        ray.kill(actor)
        prestart_workers(env, 1, keep_alive_s=120)
        time.sleep(settle_s)  # the worker starts and imports, as a pool would ahead of need
        idle = _idle_workers()
        pss.extend(pss_bytes(p) for p in idle if _is_warm(p))
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
        # What one worker started ahead holds while it waits, its imports done.
        "idle_worker_pss_gb": statistics.median(pss) / 1e9 if pss else None,
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


def _sequential_sweep(warm_workers: int, out: Path, epochs: int | None,
                      cpus_per_worker: float) -> None:
    """In a fresh process: the workload's sweep, one trial at a time; per-trial figures to ``out``."""
    from bench import workload as w
    from bench.variants import tune_trials
    from tuning import launch
    from tuning.config.spec import SweepSpec
    from tuning.trial.warm_pool import WORKER_STARTS_FILE

    data = w.sweep_spec_data(str(out.with_suffix("")))
    data["search"] = {**data["search"], "num_samples": SEQUENTIAL_TRIALS}
    if epochs:  # every trial to the end: fits long enough to hide a worker's imports
        data["scheduler"] = {"name": "fifo", "max_epochs": epochs}
    data["resources"] = {**data["resources"], "max_concurrent": 1, "warm_workers": warm_workers,
                         "cpus_per_worker": cpus_per_worker}
    start = time.perf_counter()
    outcome = launch(SweepSpec.model_validate(data), name="bench")
    wall = time.perf_counter() - start
    experiment = Path(outcome.path.uri)
    trials = tune_trials(experiment)
    for trial in trials:
        trial["started"] = json.loads(
            (experiment / trial["dir"] / WORKER_STARTS_FILE).read_text().splitlines()[0])
    out.write_text(json.dumps({"wall_s": wall, "trials": trials}))


def sequential(rounds: int, workdir: Path, epochs: int | None,
               cpus_per_worker: float) -> dict[str, Any]:
    """``warm_workers`` 0 and 1 alternated, ``rounds`` times each; ``epochs``: every trial runs
    that many (FIFO), else the workload's ASHA. ``cpus_per_worker``: on 2 cores, 1 or 0.5 leaves
    Ray a CPU free beside the running fit, where the pool starts the next trial's worker."""
    overheads: dict[int, list[float]] = {0: [], 1: []}
    walls: dict[int, list[float]] = {0: [], 1: []}
    ahead: dict[int, list[int]] = {0: [], 1: []}
    fits: dict[int, list[float]] = {0: [], 1: []}
    for round_ in range(rounds):
        for warm_workers in (0, 1) if round_ % 2 == 0 else (1, 0):
            out = workdir / f"sweep_{warm_workers}_{round_}.json"
            logger.info("bench: sweep one trial at a time, warm_workers=%d ...", warm_workers)
            subprocess.run([sys.executable, "-m", "bench.warm_pool", "--one-sweep",
                            str(warm_workers), "--out", str(out),
                            "--cpus-per-worker", str(cpus_per_worker),
                            *(["--epochs", str(epochs)] if epochs else [])],
                           check=True, cwd=Path(__file__).parents[1])
            result = json.loads(out.read_text())
            trials = sorted(result["trials"], key=lambda t: t["started"]["attempt_start"])[1:]
            overheads[warm_workers] += [t["wall_s"] - t["fit_s"] for t in trials]
            fits[warm_workers] += [t["fit_s"] for t in trials]
            walls[warm_workers].append(result["wall_s"])
            ahead[warm_workers].append(sum(t["started"]["started_ahead"] for t in trials))
    return {
        "sequential" + (f"_{epochs}_epochs" if epochs else "")
        + (f"_{cpus_per_worker:g}_cpu" if cpus_per_worker != 1 else ""): {
            "trials": SEQUENTIAL_TRIALS, "rounds": rounds, "cpus_per_worker": cpus_per_worker,
            "scheduler": f"fifo, {epochs} epochs" if epochs else "the workload's ASHA",
            **{f"warm_workers_{n}": {
                "per_trial_overhead_s_after_first": statistics.median(overheads[n]),
                "sweep_wall_s": statistics.median(walls[n]),
                "fit_s_median": statistics.median(fits[n]),
                "later_trials_started_ahead": ahead[n],
            } for n in (0, 1)},
        }
    }


def _is_warm(pid: int) -> bool:
    try:
        return b"LIGHTSWEEP_WARM_IMPORTS=" in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of the mechanism's measurement (0: none)")
    parser.add_argument("--settle-s", type=float, default=15.0)
    parser.add_argument("--sweeps", type=int, default=0,
                        help="rounds of the sequential sweeps, about 4 minutes each (0: none)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="sequential sweeps: every trial this many epochs (FIFO)")
    parser.add_argument("--cpus-per-worker", type=float, default=1.0,
                        help="sequential sweeps: resources.cpus_per_worker")
    parser.add_argument("--one-sweep", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.one_sweep is not None:
        _sequential_sweep(args.one_sweep, args.out, args.epochs, args.cpus_per_worker)
        return
    if args.sweeps:
        with tempfile.TemporaryDirectory() as tmp:
            merge_results(OUT, sequential(args.sweeps, Path(tmp), args.epochs,
                                          args.cpus_per_worker))
    if args.rounds:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"JOB_LIKE": "1"}})
        try:
            merge_results(OUT, measure(args.rounds, args.settle_s))
        finally:
            ray.shutdown()
    figures = json.loads(OUT.read_text())
    for key in [k for k in figures if k.startswith("sequential")]:
        for n in (0, 1):
            seq = figures[key][f"warm_workers_{n}"]
            logger.info("%s, %g CPU per worker, one trial at a time, warm_workers=%d: overhead "
                        "per later trial %.2f s, fit %.2f s, sweep %.1f s, started ahead %s",
                        figures[key].get("scheduler", "ASHA"),
                        figures[key].get("cpus_per_worker", 1.0), n,
                        seq["per_trial_overhead_s_after_first"], seq.get("fit_s_median", 0.0),
                        seq["sweep_wall_s"], seq["later_trials_started_ahead"])
    cold, warm = figures["cold_start_s"], figures["prestarted_start_s"]
    logger.info("cold: %.2f s (%.2f-%.2f); on a worker started ahead: %.2f s (%.2f-%.2f); "
                "landed on it %d of %d", cold["median"], cold["min"], cold["max"],
                warm["median"], warm["min"], warm["max"],
                figures["landed_on_prestarted_worker"], figures["rounds"])


if __name__ == "__main__":
    main()
