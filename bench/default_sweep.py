"""The default sweep (``make tune``: ``search_spaces/mnist1d_cnn.yaml``) with each trial runner:
``python -m bench.default_sweep`` (part of ``make bench``).

Runs ``run_tune.py launch`` on the default sweep file twice in one invocation, as a user would,
each in a process (and on a Ray) of its own: ``--trial-runner train`` (the default: every trial a
Ray Train run) and ``--trial-runner inline`` (one-worker trials in Tune's reused trial
processes). Merges ``default_sweep`` (each run's wall time, trials, epochs, best value) and
``default_sweep_inline_ratio`` into ``bench/results/latest.json``.

ASHA's decisions depend on which trial reports first, so the two runs may train different
numbers of epochs: each run's ``epochs`` and ``s_per_epoch`` say what its wall time bought.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.results_file import RESULTS, merge_results
from tuning.record import Ledger

REPO = Path(__file__).parents[1]
DEFAULT_SWEEP = REPO / "search_spaces" / "mnist1d_cnn.yaml"
RUNNERS = ("train", "inline")


def _run(storage: Path, runner: str) -> dict[str, Any]:
    start = time.perf_counter()
    subprocess.run([sys.executable, "run_tune.py", "launch", str(DEFAULT_SWEEP), "--storage",
                    str(storage), "--name", runner, "--trial-runner", runner, "--no-wandb"],
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    rows = Ledger.load(str(storage / runner)).rows()
    epochs = sum(r["epochs"] for r in rows)
    return {"wall_s": wall, "trials": len(rows), "epochs": epochs, "s_per_epoch": wall / epochs,
            "best": max(r["value"] for r in rows if r["value"] is not None),
            "statuses": sorted(r["status"] for r in rows)}


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lightsweep-default-") as tmp:
        runs = {}
        for runner in RUNNERS:
            print(f"bench: the default sweep, --trial-runner {runner} ...", flush=True)
            runs[runner] = _run(Path(tmp), runner)
            print(f"  {runs[runner]}", flush=True)
    return {"default_sweep": runs,
            "default_sweep_inline_ratio": runs["inline"]["wall_s"] / runs["train"]["wall_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON file (default {RESULTS})")
    args = parser.parse_args()
    figures = run()
    print(f"inline / train wall time: {figures['default_sweep_inline_ratio']:.2f}x")
    merge_results(args.out, figures)
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
