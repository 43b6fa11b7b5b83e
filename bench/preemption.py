"""What a preemption costs, with and without its notice: ``python -m bench.preemption``.

The chaos soak's sweep (:mod:`bench.chaos`: 2-worker DDP trials, FIFO), driven by
``launch ... --if-exists resume``, is preempted ``--after`` seconds into its first trial's
training, then rerun to its end, three ways in one invocation:

- ``notice``: SIGTERM to the driver (what SLURM and Kubernetes send before they kill), then the
  rerun once it exited;
- ``no_notice``: SIGKILL to the driver's whole session (its Ray, trial processes and workers),
  as a machine lost without warning, then the rerun;
- ``none``: the sweep uninterrupted.

The epochs the trials' rank-0 workers began (an epoch begun again after the preemption counts
twice; one cut short counts too), less the sweep's epochs, is what the preemption lost. Merges
``preemption`` (for each way: ``epochs_lost``, ``epochs_lost_per_trial``, ``wall_s``) into
``bench/results/chaos.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from typing_extensions import override

from bench.chaos import OUT, Driver, sweep_file
from bench.results_file import merge_results
from lightning_modules.classifier import Classifier
from tuning.record.layout import LEDGER_FILE

REPO = Path(__file__).parents[1]
logger = logging.getLogger("bench.preemption")


# Where the counting module writes a line for each epoch a trial's rank 0 begins.
EPOCH_LOG_ENV = "LIGHTSWEEP_BENCH_EPOCH_LOG"


class CountingClassifier(Classifier):
    """The sweep's classifier, noting each epoch it begins (rank 0) in ``$EPOCH_LOG_ENV``."""

    @override
    def on_train_epoch_start(self) -> None:
        if self.global_rank == 0:
            with open(os.environ[EPOCH_LOG_ENV], "a", encoding="utf-8") as log:
                log.write(f"{self.hparams['lr']} {self.current_epoch + 1}\n")


def preempted(folder: Path, trials: int, epochs: int, how: str, after_s: float) -> dict[str, Any]:
    sweep = sweep_file(folder, trials, epochs, module="bench.preemption:CountingClassifier")
    runs = folder / "runs"
    begun = folder / "epochs.log"
    driver = Driver([sys.executable, str(REPO / "run_tune.py"), "launch", str(sweep),
                     "--storage", str(runs), "--name", "sweep", "--if-exists", "resume"],
                    folder, folder / "driver.log",
                    # Workers import this module from the repository; they write the count.
                    env={EPOCH_LOG_ENV: str(begun), "PYTHONPATH": str(REPO)})
    start = time.monotonic()
    driver.start()
    assert driver.process is not None
    if how != "none":
        while not list((runs / "sweep").glob("trial_*/progress.csv")):
            time.sleep(0.2)  # the first epoch reported
        time.sleep(after_s)
        if how == "notice":
            driver.process.send_signal(signal.SIGTERM)
            driver.process.wait(timeout=300)
            driver.codes.append(driver.process.returncode)
        driver.end_session()
        driver.start()
    while not driver.poll():
        time.sleep(0.5)
    trained = len(begun.read_text().splitlines())
    assert (runs / "sweep" / LEDGER_FILE).is_file()
    return {"wall_s": time.monotonic() - start, "epochs_trained": trained,
            "epochs_lost": trained - trials * epochs,
            "epochs_lost_per_trial": (trained - trials * epochs) / trials,
            "driver_exit_codes": driver.codes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.preemption", description=__doc__)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--after", type=float, default=4.0,
                        help="seconds after the first epoch's report that the preemption comes")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="lightsweep-preemption-") as tmp:
        for how in ("none", "notice", "no_notice"):
            folder = Path(tmp, how)
            folder.mkdir()
            found[how] = preempted(folder, args.trials, args.epochs, how, args.after)
            logger.info("%s: %s", how, found[how])
    figures = {"preemption": {"trials": args.trials, "epochs": args.epochs,
                              "after_s": args.after, **found}}
    merge_results(args.out, figures)
    sys.stdout.write(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
