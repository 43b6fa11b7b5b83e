"""How good the multi-objective search is: ``python -m bench.pareto`` (part of ``make bench``).

The two-objective sweep (``search_spaces/mnist1d_pareto.yaml``: MNIST-1D's CNN, val/acc against
model/params; its latency constraint dropped, a figure of the machine rather than the model)
against random search with every trial run to ``max_epochs``, the same trials, over 3 seeds, each
a ``run_tune.py launch`` in a fresh process (inline trials: many short ones on 2 cores).

- ``mo_hypervolume_ratio_vs_random``: the hypervolume of the sweep's Pareto front over random
  search's, mean over seeds. Points are (1 - val/acc, log10 params), to minimize, against the
  reference (1, 6): an error of 1 and a million parameters, beyond every model of the space.
- ``mo_hypervolume_ratio_vs_random_same_epochs``: the same against random search cut at the
  epochs the sweep trained (its trials in the order they started, as many as those epochs pay
  for): what the same compute buys each way.
- ``mo_epochs_saved_fraction``: the share of ``trials x max_epochs`` that early stopping by Pareto
  rank did not train.
- ``mo_front_stopped_by_single_metric_asha``: why rungs rank by Pareto front, not by the first
  objective: of the trials on the sweep's final front, the share that ASHA by val/acc alone
  would have stopped at a rung, replayed on the same reports (each trial against those that
  reached the rung before it, Ray's cutoff: the 1 - 1/reduction_factor quantile).

The figures merge into ``bench/results/latest.json`` under those keys and ``pareto``.
"""

from __future__ import annotations

import argparse
import logging
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bench.results_file import RESULTS, merge_results
from tuning.record import Ledger
from tuning.record.pareto import hypervolume_2d

REPO = Path(__file__).parents[1]
SWEEP = REPO / "search_spaces" / "mnist1d_pareto.yaml"
REFERENCE = (1.0, 6.0)  # (error, log10 params): beyond every model the space holds
SEEDS = (0, 1, 2)

logger = logging.getLogger("bench.pareto")


def _sweep(out: Path, random_search: bool, trials: int, epochs: int) -> Path:
    data = yaml.safe_load(SWEEP.read_text())
    data.pop("constraints", None)
    data["search"] = {**data.get("search", {}), "num_samples": trials}
    data["scheduler"] = {**data.get("scheduler", {}), "max_epochs": epochs}
    if random_search:
        data["search"]["sampler"] = "random"
        data["scheduler"] = {"name": "fifo", "max_epochs": epochs}
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def _launch(sweep: Path, storage: Path, name: str, seed: int) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "run_tune.py", "launch", str(sweep), "--storage", str(storage),
                    "--name", name, "--seed", str(seed), "--trial-runner", "inline",
                    "--no-wandb"], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def points(ledger: Ledger) -> list[tuple[float, float]]:
    """Each trial's last scored epoch as (1 - val/acc, log10 params)."""
    found = []
    for record in ledger.trials.values():
        last = record.last_scored_epoch(["val/acc", "model/params"])
        if last is not None:
            found.append((1 - last.metrics["val/acc"], math.log10(last.metrics["model/params"])))
    return found


def first_epochs(ledger: Ledger, budget: int) -> Ledger:
    """``ledger``'s trials in the order they started, as many as ``budget`` epochs pay for: a
    sweep of the same kind stopped when it had trained that much."""
    def started(record: Any) -> float:
        return min((e.reported_at or 0.0 for e in record.history), default=math.inf)

    kept, spent = {}, 0
    for record in sorted(ledger.trials.values(), key=started):
        if spent >= budget:
            break
        kept[record.trial_id] = record
        spent += record.epochs
    return Ledger(ledger.spec, kept)


def single_metric_asha_stops(ledger: Ledger, trial_ids: list[str]) -> int:
    """How many of ``trial_ids`` ASHA by val/acc alone would have stopped at a rung, replayed on
    the sweep's reports in the order they arrived."""
    scheduler = ledger.spec.scheduler
    stopped = set()
    for milestone in scheduler.rungs:
        arrivals = sorted(
            (e.reported_at or 0.0, t.trial_id, e.metrics["val/acc"])
             for t in ledger.trials.values() for e in t.history
             if e.epoch == milestone and "val/acc" in e.metrics)
        recorded: list[float] = []
        for _, trial_id, value in arrivals:
            if recorded:
                cutoff = float(np.nanpercentile(recorded, (1 - 1 / scheduler.reduction_factor)
                                                * 100))
                if value < cutoff:
                    stopped.add(trial_id)
            recorded.append(value)
    return len(stopped & set(trial_ids))


def run(trials: int, epochs: int) -> dict[str, Any]:
    per_seed = []
    with tempfile.TemporaryDirectory(prefix="bench-pareto-") as tmp:
        storage = Path(tmp)
        for seed in SEEDS:
            figures: dict[str, Any] = {"seed": seed}
            for arm, random_search in (("pareto", False), ("random", True)):
                sweep = _sweep(storage / f"{arm}.yaml", random_search, trials, epochs)
                name = f"{arm}-{seed}"
                wall = _launch(sweep, storage, name, seed)
                ledger = Ledger.load(str(storage / name))
                cost = ledger.cost()
                figures[arm] = {
                    "wall_s": round(wall, 1),
                    "hypervolume": round(hypervolume_2d(points(ledger), REFERENCE), 4),
                    "epochs": cost.epochs, "epochs_saved": cost.epochs_saved,
                    "front": len([f for f in ledger.fronts().values() if f == 1]),
                }
                if arm == "pareto":
                    front = [t for t, f in ledger.fronts().items() if f == 1]
                    figures[arm]["front_stopped_by_single_metric_asha"] = (
                        single_metric_asha_stops(ledger, front))
                else:  # random search stopped when it had trained as many epochs
                    same = first_epochs(ledger, figures["pareto"]["epochs"])
                    figures[arm]["hypervolume_same_epochs"] = round(
                        hypervolume_2d(points(same), REFERENCE), 4)
                    figures[arm]["trials_same_epochs"] = len(same.trials)
            logger.info("seed %d: %s", seed, figures)
            per_seed.append(figures)
    ratios = [s["pareto"]["hypervolume"] / s["random"]["hypervolume"] for s in per_seed]
    same_epochs = [s["pareto"]["hypervolume"] / s["random"]["hypervolume_same_epochs"]
                   for s in per_seed]
    budget = trials * epochs * len(SEEDS)
    front = sum(s["pareto"]["front"] for s in per_seed)
    return {
        "mo_hypervolume_ratio_vs_random": round(sum(ratios) / len(ratios), 3),
        "mo_hypervolume_ratio_vs_random_same_epochs": round(
            sum(same_epochs) / len(same_epochs), 3),
        "mo_epochs_saved_fraction": round(
            sum(s["pareto"]["epochs_saved"] for s in per_seed) / budget, 3),
        "mo_front_stopped_by_single_metric_asha": round(
            sum(s["pareto"]["front_stopped_by_single_metric_asha"] for s in per_seed) / front, 3),
        "pareto": {"trials": trials, "max_epochs": epochs, "reference": REFERENCE,
                   "hypervolume_ratios": [round(r, 3) for r in ratios],
                   "hypervolume_ratios_same_epochs": [round(r, 3) for r in same_epochs],
                   "seeds": per_seed},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    figures = run(args.trials, args.epochs)
    merge_results(args.out, figures)
    logger.info("%s", {k: v for k, v in figures.items() if k != "pareto"})


if __name__ == "__main__":
    main()
