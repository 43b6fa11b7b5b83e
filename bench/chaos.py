"""A sweep under chaos: ``python -m bench.chaos`` (part of ``make bench``).

A sweep of ``--trials`` trials x ``--epochs`` epochs (scheduler FIFO, so every trial must reach
its last epoch; every trial a 2-worker DDP run), driven by ``launch ... --if-exists resume`` as
a platform runs it, while a killer SIGKILLs, at random times from a seeded schedule, Train
worker processes, trials' own processes and the driver; after a driver kill it runs the same
command again, as KubeRay's backoffLimit or a SLURM requeue would. The same sweep runs first
without kills, in the same invocation, for the wall-time ratio.

It checks Ray's release-test criteria (every trial reaches its last epoch; its last checkpoint
holds its last reported metric) and more: every epoch recorded exactly once and in order, no
trial lost or added, Optuna told of each trial once. It writes ``bench/results/chaos.json``
(``--out``): ``trials``, ``trials_finished``, ``kills`` by kind (``worker``, ``trial_process``,
``driver``), ``epochs_duplicated``, ``epochs_missing``, ``epochs_out_of_order``,
``final_checkpoint_matches_final_metric`` (a fraction), ``optuna_trials_told_once``,
``wall_s``, ``wall_s_no_chaos``, ``wall_ratio_vs_no_chaos``, and the schedule's seed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.results_file import merge_results
from tuning.record import Ledger
from tuning.record.layout import LEDGER_FILE
from tuning.record.location import Location
from tuning.record.study_file import STUDY_FILE, STUDY_NAME

REPO = Path(__file__).parents[1]
OUT = REPO / "bench" / "results" / "chaos.json"
KINDS = ("worker", "trial_process", "driver")
logger = logging.getLogger("bench.chaos")


def sweep_file(folder: Path, trials: int, epochs: int,
               module: str = "lightning_modules.classifier:Classifier") -> Path:
    """Digits and a small MLP, every trial a 2-worker DDP run, two at a time on 2 CPUs."""
    path = folder / "chaos.yaml"
    path.write_text(yaml.safe_dump({
        "module": module,
        "datamodule": "lightning_modules.datamodules:DigitsDataModule",
        "module_args": {"arch": "mlp", "input_shape": [8, 8], "width": 32, "depth": 1},
        "space": {"module.lr": {"loguniform": [1e-3, 1e-1]},
                  "datamodule.batch_size": {"choice": [32, 64]}},
        "metric": "val/acc", "mode": "max",
        "search": {"num_samples": trials, "seed": 0},
        "scheduler": {"name": "fifo", "max_epochs": epochs},
        "resources": {"workers_per_trial": 2, "cpus_per_worker": 0.5},
        # Every death is retried; the kills are many and a trial may be hit more than once.
        "failures": {"max_retries": 20},
        "wandb": {"enabled": False},
    }))
    return path


def _session_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[3])


def _processes(session: int, prefix: bytes) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (entry / "cmdline").read_bytes().startswith(prefix) and \
                    _session_of(int(entry.name)) == session:
                found.append(int(entry.name))
    return found


def _trial_processes(experiment: Path, session: int) -> list[int]:
    """The processes of running trials (their pid in Tune's last result), in the session."""
    pids = []
    for results in experiment.glob("trial_*/result.json"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            lines = results.read_text().splitlines()
            pid = int(json.loads(lines[-1])["pid"])
            if _session_of(pid) == session:
                pids.append(pid)
    return pids


@dataclass
class Driver:
    """The sweep's driver, run as a platform runs its entrypoint, in a session of its own."""

    command: list[str]
    cwd: Path
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    runs: int = 0
    process: subprocess.Popen[bytes] | None = None
    done: bool = False
    codes: list[int] = field(default_factory=list)

    def start(self) -> None:
        env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, **self.env}
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(self.command, cwd=self.cwd, env=env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.runs += 1

    def end_session(self) -> None:
        """What a lost machine does: every process of the driver's session dies at once."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=60)

    def poll(self) -> bool:
        """Whether the sweep is over (the driver exited 0); a driver that exited otherwise is
        run again."""
        assert self.process is not None
        code = self.process.poll()
        if code is None:
            return False
        self.codes.append(code)
        self.end_session()
        if code == 0:
            self.done = True
            return True
        self.start()
        return False


def _targets(kind: str, session: int, experiment: Path) -> list[int]:
    """The processes of ``kind`` in the driver's session."""
    if kind == "worker":
        return _processes(session, b"ray::RayTrainWorker")
    if kind == "trial_process":
        return _trial_processes(experiment, session)
    return [session]


def run_sweep(folder: Path, trials: int, epochs: int, kills: int, driver_kills: int,
              seed: int, timeout_s: float, first_s: tuple[float, float] = (8, 20),
              every_s: tuple[float, float] = (6, 16)) -> tuple[dict[str, int], float, Path, Driver]:
    """One sweep under ``kills`` random kills (``driver_kills`` of them the driver's), the
    first after ``first_s`` seconds and then every ``every_s`` (each drawn uniformly); with
    ``kills`` 0, the same sweep alone.
    Returns the kills by kind, the wall time, the experiment and its driver."""
    sweep = sweep_file(folder, trials, epochs)
    runs = folder / "runs"
    experiment = runs / "chaos"
    driver = Driver([sys.executable, str(REPO / "run_tune.py"), "launch", str(sweep),
                     "--storage", str(runs), "--name", "chaos", "--if-exists", "resume"],
                    folder, folder / "driver.log")
    rng = random.Random(seed)
    # The schedule: which kinds, in a seeded order, the driver's kills among them.
    plan = ["driver"] * driver_kills + [rng.choice(KINDS[:2]) for _ in range(kills - driver_kills)]
    rng.shuffle(plan)
    done: Counter[str] = Counter()
    start = time.monotonic()
    driver.start()
    next_kill = start + rng.uniform(*first_s)
    while not driver.poll():
        if time.monotonic() - start > timeout_s:
            driver.end_session()
            raise TimeoutError(f"the sweep did not end in {timeout_s} s")
        if plan and time.monotonic() >= next_kill and (experiment / LEDGER_FILE).is_file():
            kind = plan[0]
            assert driver.process is not None
            session = driver.process.pid
            targets = _targets(kind, session, experiment)
            if targets:
                victim = rng.choice(targets)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(victim, signal.SIGKILL)
                logger.info("%.0f s: killed the %s (pid %d)", time.monotonic() - start, kind,
                            victim)
                done[kind] += 1
                plan.pop(0)
                if kind == "driver":
                    driver.process.wait(timeout=60)
                    driver.end_session()  # its Ray goes with it, as with a lost head
                    driver.start()
            next_kill = time.monotonic() + rng.uniform(*every_s)
        time.sleep(0.2)
    return {k: done[k] for k in KINDS}, time.monotonic() - start, experiment, driver


def _last_checkpoint_report(checkpoint: str) -> dict[str, Any] | None:
    import torch

    state = torch.load(Path(checkpoint), map_location="cpu", weights_only=False)
    for value in (state.get("callbacks") or {}).values():
        if isinstance(value, dict) and value.get("reports"):
            return dict(value["reports"][-1])
    return None


def check(experiment: Path, trials: int, epochs: int) -> dict[str, Any]:
    """The criteria, measured on the finished experiment."""
    import optuna

    ledger = Ledger.load(Location.parse(experiment))
    duplicated = missing = out_of_order = matches = 0
    for trial in ledger.trials.values():
        seen = [e.epoch for e in trial.history]
        duplicated += len(seen) - len(set(seen))
        missing += len(set(range(1, epochs + 1)) - set(seen))
        out_of_order += int(seen != sorted(seen))
        last = trial.history[-1] if trial.history else None
        if last is not None and last.checkpoint:
            report = _last_checkpoint_report(str(Path(last.checkpoint)))
            matches += int(report is not None and report["epoch"] == last.epoch
                           and report["val/acc"] == last.metrics["val/acc"])
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp, "study.db")
        copy.write_bytes((Location.parse(experiment) / STUDY_FILE).read_bytes())
        study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{copy}")
        told = Counter(t.user_attrs.get("trial_id") for t in study.trials
                       if t.state.is_finished())
    return {
        "trials": len(ledger.trials),
        "trials_finished": sum(t.status == "completed" and t.epochs == epochs
                               for t in ledger.trials.values()),
        "epochs_duplicated": duplicated, "epochs_missing": missing,
        "epochs_out_of_order": out_of_order,
        "final_checkpoint_matches_final_metric": matches / max(1, len(ledger.trials)),
        "optuna_trials_told_once": sum(n == 1 for i, n in told.items() if i in ledger.trials),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--kills", type=int, default=12)
    parser.add_argument("--driver-kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="the kill schedule's seed")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the sweep without kills (no wall-time ratio)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    figures: dict[str, Any] = {"seed": args.seed, "epochs_per_trial": args.epochs,
                               "workers_per_trial": 2}
    with tempfile.TemporaryDirectory(prefix="lightsweep-chaos-") as tmp:
        if not args.no_baseline:
            calm = Path(tmp, "calm")
            calm.mkdir()
            _, figures["wall_s_no_chaos"], _, _ = run_sweep(
                calm, args.trials, args.epochs, 0, 0, args.seed, args.timeout)
        chaos = Path(tmp, "chaos")
        chaos.mkdir()
        kills, wall, experiment, driver = run_sweep(
            chaos, args.trials, args.epochs, args.kills, args.driver_kills, args.seed,
            args.timeout)
        figures.update(check(experiment, args.trials, args.epochs))
        figures.update(kills=kills, kills_total=sum(kills.values()), wall_s=wall,
                       driver_runs=driver.runs, driver_exit_codes=driver.codes)
    if "wall_s_no_chaos" in figures:
        figures["wall_ratio_vs_no_chaos"] = figures["wall_s"] / figures["wall_s_no_chaos"]
    merge_results(args.out, figures)
    sys.stdout.write(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
