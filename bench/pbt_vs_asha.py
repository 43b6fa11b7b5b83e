"""Population-based training against today's search (TPE + ASHA), the same model and space,
about the same total epochs, 3 seeds: ``python -m bench.pbt_vs_asha`` (part of ``make bench``).

- PBT: ``search_spaces/mnist1d_pbt.yaml`` as shipped: a population of 4 trials x 30 epochs (120
  epochs), every trial a Ray Train run, the bottom quarter moved every 5 epochs.
- TPE + ASHA: the same space and model with ``scheduler.name: asha`` (30 epochs at most, grace
  3, reduction factor 3) and 8 trials, which ASHA's stopping brings to about the same epochs;
  inline trials (the same fit; the figures here are accuracy and epochs, not time).

For each run: the best trial's (``fetch_best``) accuracy on MNIST-1D's test split, which no trial
saw, and the epochs the run had trained (all trials, in the order their reports arrived) when a
trial first reported val/acc >= 0.94, the MNIST-1D paper's CNN figure (None: never).
Merges ``pbt_best_test_acc`` and ``asha_best_test_acc`` (means over seeds) and ``pbt_vs_asha``
(every run) into ``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.results_file import RESULTS, merge_results
from bench.search import PAPER_CNN_TEST_ACC, best_test_accuracy, epochs_to_reach, reports_in_order
from tuning.record import Ledger

REPO = Path(__file__).parents[1]
PBT_SWEEP = REPO / "search_spaces" / "mnist1d_pbt.yaml"
ASHA_TRIALS = 8
SEEDS = (0, 1, 2)

logger = logging.getLogger("bench.pbt_vs_asha")


def _asha_sweep(out: Path) -> Path:
    data = yaml.safe_load(PBT_SWEEP.read_text())
    data["search"]["num_samples"] = ASHA_TRIALS
    data["scheduler"] = {"name": "asha", "max_epochs": data["scheduler"]["max_epochs"],
                         "grace_period": 3, "reduction_factor": 3}
    data["resources"] = {"workers_per_trial": 1, "cpus_per_worker": 1, "trial_runner": "inline"}
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def _run(sweep: Path, storage: Path, name: str, seed: int) -> dict[str, Any]:
    start = time.perf_counter()
    subprocess.run([sys.executable, "run_tune.py", "launch", str(sweep), "--storage", str(storage),
                    "--name", name, "--seed", str(seed), "--no-wandb"], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    values = reports_in_order(Ledger.load(str(storage / name)), "val/acc")
    best = best_test_accuracy(storage / name)
    return {"seed": seed, "wall_s": round(wall, 1), "epochs": len(values),
            "best_val_acc": max(values), "best_test_acc": round(best["test_acc"], 4),
            "best_trial": best["trial_id"],
            "epochs_to_val_0_94": epochs_to_reach(values, PAPER_CNN_TEST_ACC, "max")}


def run() -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"pbt": [], "asha": []}
    with tempfile.TemporaryDirectory(prefix="bench-pbt-asha-") as tmp:
        storage = Path(tmp)
        asha = _asha_sweep(storage / "asha.yaml")
        for seed in SEEDS:
            for arm, sweep in (("pbt", PBT_SWEEP), ("asha", asha)):
                runs[arm].append(_run(sweep, storage, f"{arm}-{seed}", seed))
                logger.info("%s seed %d: %s", arm, seed, runs[arm][-1])
    return {
        "pbt_best_test_acc": round(statistics.mean(r["best_test_acc"] for r in runs["pbt"]), 4),
        "asha_best_test_acc": round(statistics.mean(r["best_test_acc"] for r in runs["asha"]), 4),
        "pbt_vs_asha": {"paper_cnn_test_acc": PAPER_CNN_TEST_ACC, "asha_trials": ASHA_TRIALS,
                        **runs},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    figures = run()
    merge_results(args.out, figures)
    logger.info("%s", {k: v for k, v in figures.items() if k != "pbt_vs_asha"})


if __name__ == "__main__":
    main()
