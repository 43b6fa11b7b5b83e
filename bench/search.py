"""How good the search is on the default sweep: ``python -m bench.search`` (part of ``make bench``).

Runs the default MNIST-1D sweep (``search_spaces/mnist1d_cnn.yaml``: Optuna TPE told the truth,
ASHA) and, in the same run, the baseline every tuner is measured against, random search with no
early stopping (random draws, every trial to ``max_epochs``: Ray Tune's default), with the same
trial budget. Each is a ``run_tune.py launch`` in a fresh process. Then:

- ``mnist1d_best_test_acc``: the default sweep's best trial (by val/acc) re-evaluated on the
  MNIST-1D test split, which no trial ever saw; the MNIST-1D paper's CNN reaches 0.94.
- ``epochs_ratio_vs_random_search``: the epochs the default sweep had run (all its trials'
  epochs, in the order their reports arrived) when one first reached the best val/acc random
  search reached at all, over the epochs random search ran to get there and know it (its whole
  budget). ``..._to_its_best`` divides by the epochs random search had run when it first hit
  that value instead: the same, for a random search that one could stop at the right moment.

The figures merge into ``bench/results/latest.json`` under those keys and ``search``.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.results_file import RESULTS, merge_results
from tuning.record import Ledger

REPO = Path(__file__).parents[1]
DEFAULT_SWEEP = REPO / "search_spaces" / "mnist1d_cnn.yaml"
PAPER_CNN_TEST_ACC = 0.94  # Greydanus (2020), MNIST-1D, Table 1

logger = logging.getLogger("bench.search")


def _launch(sweep: Path, storage: Path, name: str) -> float:
    """``run_tune.py launch`` in a fresh process; returns its wall seconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "run_tune.py", "launch", str(sweep), "--storage",
                    str(storage), "--name", name], cwd=REPO, check=True)
    return time.perf_counter() - start


def _random_search_sweep(sweep: Path, out: Path) -> Path:
    """``sweep`` with random draws and no early stopping: nothing else changed."""
    data = yaml.safe_load(sweep.read_text())
    data.setdefault("search", {})["sampler"] = "random"
    data.setdefault("scheduler", {})["name"] = "fifo"
    out.write_text(yaml.safe_dump(data, sort_keys=False))  # TPE starts with the same draws
    return out


def reports_in_order(ledger: Ledger, metric: str) -> list[float]:
    """Every epoch's ``metric`` across the sweep's trials, in the order the driver got them."""
    epochs = [e for t in ledger.trials.values() for e in t.history if metric in e.metrics]
    epochs.sort(key=lambda e: (e.reported_at or 0.0, e.epoch))
    return [e.metrics[metric] for e in epochs]


def epochs_to_reach(values: list[float], target: float, mode: str) -> int | None:
    """How many reports (epochs) had been run when one first reached ``target``; None if never."""
    for n, value in enumerate(values, start=1):
        if (value >= target) if mode == "max" else (value <= target):
            return n
    return None


def best_test_accuracy(experiment: Path) -> dict[str, Any]:
    import lightning.pytorch as pl

    from tuning.read.results import fetch_best

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # its banners
    best = fetch_best(str(experiment))
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False,
                         precision=best.spec.trial_args(best.config)["trainer"].get(
                             "precision", "32-true"))
    [scores] = trainer.test(best.load_model(), datamodule=best.load_datamodule(), verbose=False)
    return {"trial_id": best.trial_id, "config": best.config, "val_acc": best.value,
            "epoch": best.checkpoint_epoch, "test_acc": scores["test/acc"]}


def run(sweep: Path = DEFAULT_SWEEP) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lightsweep-bench-search-") as tmp:
        storage = Path(tmp)
        baseline_sweep = _random_search_sweep(sweep, storage / "random.yaml")
        logger.info("bench: the default sweep (TPE + ASHA) ...")
        tuned_s = _launch(sweep, storage, "tuned")
        logger.info("bench: random search, every trial to the end ...")
        random_s = _launch(baseline_sweep, storage, "random")
        tuned, random = Ledger.load(str(storage / "tuned")), Ledger.load(str(storage / "random"))
        metric, mode = tuned.spec.metric, tuned.spec.mode
        best = best_test_accuracy(storage / "tuned")
    tuned_values, random_values = reports_in_order(tuned, metric), reports_in_order(random, metric)
    target = (max if mode == "max" else min)(random_values)
    needed = epochs_to_reach(tuned_values, target, mode)
    random_to_best = epochs_to_reach(random_values, target, mode)
    figures = {
        "mnist1d_best_test_acc": best["test_acc"],
        "mnist1d_sweep_s": tuned_s,
        "mnist1d_sweep_epochs": len(tuned_values),
        "epochs_ratio_vs_random_search": needed / len(random_values) if needed else None,
        "epochs_ratio_vs_random_search_to_its_best":
            needed / random_to_best if needed and random_to_best else None,
    }
    detail = {
        "sweep": str(sweep), "trials": tuned.spec.search.num_samples,
        "max_epochs": tuned.spec.scheduler.max_epochs, "paper_cnn_test_acc": PAPER_CNN_TEST_ACC,
        "best_trial": best,
        "tuned": {"wall_s": tuned_s, "epochs": len(tuned_values), "best": max(tuned_values),
                  "epochs_to_reach_random_best": needed},
        "random": {"wall_s": random_s, "epochs": len(random_values), "best": target,
                   "epochs_to_its_best": random_to_best},
    }
    for key, value in figures.items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    return {**figures, "search": detail}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweep", type=Path, default=DEFAULT_SWEEP, help="the sweep file")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON file (default {RESULTS})")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    merge_results(args.out, run(args.sweep.resolve()))
    print(f"\nmerged into: {args.out}")


if __name__ == "__main__":
    main()
