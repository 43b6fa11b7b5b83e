"""The GPU check: ``make gpu-check`` (or ``python -m bench.gpu_check``), under 8 minutes on one GPU.

A sweep as a user runs it (``run_tune.py launch``): 4 one-worker trials of MNIST-1D's CNN at
``gpus_per_worker: 0.5``, so two share the card, searching the learning rate and the precision
over ``16-mixed``, ``bf16-mixed`` and ``32-true``. Then:

- two trials ran on the GPU at once: their running intervals in the record overlap, and (where
  ``nvidia-smi`` lists processes) two worker processes held GPU memory at the same moment;
- every trial's precision as its workers recorded it is the one its configuration asked for;
- the best trial's model loads and scores its logged validation accuracy again;
- a trial that outgrows its share of the card's memory fails alone: two trials share the GPU,
  one holding 70% of the card's memory (more than its half, though both together would fit),
  the other 10%; the first fails with CUDA's out-of-memory error, the second completes;
- samples/s inside a trial against plain Lightning fitting the same model with the same
  precision and batch size alone on the same GPU (the epochs after the first, validation and
  lightsweep's per-epoch checkpoint and report included), per-trial overhead (a trial's seconds less its
  epochs at plain Lightning's pace), and GPU utilisation sampled over the sweep.

Writes ``bench/results/gpu.json``. On a machine without a GPU it prints "no GPU: skipped" and
exits 0, so ``make gpu-check`` is safe anywhere.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sized
from pathlib import Path
from typing import Any, cast

import torch
import yaml
from typing_extensions import override

from bench.results_file import merge_results
from lightning_modules.classifier import Classifier
from tuning.record import Ledger

REPO = Path(__file__).parents[1]
OUT = REPO / "bench" / "results" / "gpu.json"
PRECISIONS = ["16-mixed", "bf16-mixed", "32-true"]
TRIALS, EPOCHS, BATCH = 4, 20, 128
GPUS_PER_WORKER = 0.5
# A seed whose first four random draws cover every precision (tests/test_gpu_check.py holds it).
SEED = 3
MODULE_ARGS: dict[str, Any] = {"arch": "cnn1d", "input_shape": [40], "num_classes": 10, "depth": 3,
               "width": 128, "optimizer": "adamw"}

# The out-of-memory phase: shares of the card's memory each of its two trials holds.
HUNGRY, MODEST = 0.7, 0.1
OOM_SEED = 0  # its two random draws are one of each (tests/test_gpu_check.py holds it)

logger = logging.getLogger("bench.gpu_check")


class MemoryHungryClassifier(Classifier):
    """The check's classifier, holding ``card_share`` of its GPU's memory from the start of fit:
    a model too big for the share of the card its trial was given.

    Args:
        card_share: The share of the card's memory held.
        lr: Learning rate.
    """

    def __init__(self, card_share: float = 0.0, lr: float = 1e-3) -> None:
        super().__init__(arch="cnn1d", input_shape=(40,), width=32, depth=3, lr=lr)
        self.card_share = card_share
        self.held: torch.Tensor | None = None

    @override
    def on_fit_start(self) -> None:
        total = torch.cuda.get_device_properties(self.device).total_memory
        self.held = torch.empty(int(total * self.card_share), dtype=torch.uint8,
                                device=self.device)


def sweep_data(storage: Path, epochs: int = EPOCHS) -> dict[str, Any]:
    """The check's sweep file, as a user would write it."""
    return {
        "module": "lightning_modules.classifier:Classifier",
        "datamodule": "lightning_modules.datamodules:MNIST1DDataModule",
        "module_args": MODULE_ARGS,
        "datamodule_args": {"data_dir": str(storage / "data"), "batch_size": BATCH},
        "space": {"module.lr": {"loguniform": [1e-3, 3e-2]},
                  "trainer.precision": {"choice": PRECISIONS}},
        "metric": "val/acc", "mode": "max",
        "search": {"num_samples": TRIALS, "seed": SEED, "sampler": "random"},
        "scheduler": {"name": "fifo", "max_epochs": epochs},
        "resources": {"workers_per_trial": 1, "cpus_per_worker": 2,
                      "gpus_per_worker": GPUS_PER_WORKER, "float32_matmul_precision": "high"},
        "wandb": {"enabled": False},
        "storage": str(storage / "runs"),
    }


def oom_sweep_data(storage: Path) -> dict[str, Any]:
    """Two trials sharing the card, one holding more memory than its share."""
    return {
        "module": "bench.gpu_check:MemoryHungryClassifier",
        "datamodule": "lightning_modules.datamodules:MNIST1DDataModule",
        "datamodule_args": {"data_dir": str(storage / "data"), "batch_size": BATCH},
        "space": {"module.card_share": {"choice": [HUNGRY, MODEST]}},
        "metric": "val/acc", "mode": "max",
        "search": {"num_samples": 2, "seed": OOM_SEED, "sampler": "random"},
        "scheduler": {"name": "fifo", "max_epochs": 2},
        "resources": {"workers_per_trial": 1, "cpus_per_worker": 2,
                      "gpus_per_worker": GPUS_PER_WORKER},
        "wandb": {"enabled": False},
        "storage": str(storage / "runs"),
    }


def _oom_isolation(storage: Path) -> dict[str, Any]:
    """Runs :func:`oom_sweep_data`'s sweep; what became of each trial."""
    sweep = storage / "gpu_oom.yaml"
    sweep.write_text(yaml.safe_dump(oom_sweep_data(storage), sort_keys=False))
    # The sweep ends with a failed trial, so run_tune.py exits non-zero: the record tells.
    subprocess.run([sys.executable, "run_tune.py", "launch", str(sweep), "--name", "gpu-oom"],
                   cwd=REPO, check=False)
    trials = Ledger.load(str(storage / "runs" / "gpu-oom")).trials.values()
    return {str(t.config.get("module.card_share")): {"status": t.status, "epochs": t.epochs,
                                                     "error": t.error} for t in trials}


class GpuSampler:
    """Samples ``nvidia-smi`` twice a second: utilisation, memory, and the processes on the GPU."""

    def __init__(self) -> None:
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def _query(*args: str) -> list[list[str]]:
        out = subprocess.run(["nvidia-smi", *args, "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=False).stdout
        return [[c.strip() for c in line.split(",")] for line in out.splitlines() if line.strip()]

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                gpu = self._query("--query-gpu=utilization.gpu,memory.used")
                apps = self._query("--query-compute-apps=pid,used_memory")
            except (OSError, subprocess.TimeoutExpired):
                return
            if gpu:
                self.samples.append({"t": time.time(), "util": float(gpu[0][0]),
                                     "mem_mib": float(gpu[0][1]),
                                     "pids": [int(a[0]) for a in apps if a and a[0].isdigit()]})
            self._stop.wait(0.5)


def _steady_epoch_s(seconds: list[float]) -> float:
    """Seconds per epoch after the first (which carries start-up), over all of them together.

    Not a median of single epochs: a trial's reports reach Tune in batches (two epochs of
    0.1 s can arrive 1 ms apart), so one epoch's interval says little; their sum does.
    """
    later = seconds[1:] or seconds
    return sum(later) / len(later)


def _overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def _plain_lightning(precision: str, epochs: int, data_dir: Path,
                     lr: float) -> tuple[list[float], int]:
    """Seconds of each epoch of plain Lightning fitting the check's model on the GPU alone, and
    the samples of an epoch."""
    import lightning.pytorch as pl

    from lightning_modules.datamodules import MNIST1DDataModule

    class EpochClock(pl.Callback):
        def __init__(self) -> None:
            self.ends = [time.perf_counter()]

        def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
            self.ends.append(time.perf_counter())

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # its banner, per fit
    torch.set_float32_matmul_precision("high")
    clock = EpochClock()
    trainer = pl.Trainer(max_epochs=epochs, accelerator="gpu", devices=1,
                         precision=cast(Any, precision),
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[clock])
    model = Classifier(**MODULE_ARGS, lr=lr)
    datamodule = MNIST1DDataModule(batch_size=BATCH, data_dir=str(data_dir))
    trainer.fit(model, datamodule=datamodule)
    samples = len(cast(Sized, datamodule.train_dataloader().dataset))
    return [b - a for a, b in zip(clock.ends, clock.ends[1:], strict=False)], samples


def _val_acc(best: Any) -> float:
    """The best trial's loaded model, scored on the validation split it was tuned on."""
    model = best.load_model(map_location="cuda").eval()
    datamodule = best.load_datamodule()
    datamodule.prepare_data()
    datamodule.setup("fit")
    correct = total = 0
    with torch.no_grad():
        for x, y in datamodule.val_dataloader():
            pred = model(x.cuda()).argmax(dim=1)
            correct += int((pred == y.cuda()).sum())
            total += len(y)
    return correct / total


def run(epochs: int = EPOCHS) -> dict[str, Any] | None:
    if not torch.cuda.is_available():
        print("no GPU: skipped (torch.cuda.is_available() is False)")
        return None
    from tuning.read.results import fetch_best

    gpu_name = torch.cuda.get_device_name(0)
    capability = ".".join(map(str, torch.cuda.get_device_capability(0)))
    with tempfile.TemporaryDirectory(prefix="lightsweep-gpu-check-") as tmp:
        storage = Path(tmp)
        sweep = storage / "gpu_check.yaml"
        sweep.write_text(yaml.safe_dump(sweep_data(storage, epochs), sort_keys=False))
        logger.info("gpu-check: %d trials at gpus_per_worker %s on %s (%s)", TRIALS,
                    GPUS_PER_WORKER, gpu_name, capability)
        start = time.perf_counter()
        with GpuSampler() as sampler:
            subprocess.run([sys.executable, "run_tune.py", "launch", str(sweep),
                            "--name", "gpu-check"], cwd=REPO, check=True)
        sweep_s = time.perf_counter() - start
        experiment = str(storage / "runs" / "gpu-check")
        trials = list(Ledger.load(experiment).trials.values())
        best = fetch_best(experiment)
        reloaded_acc = _val_acc(best)
        logger.info("gpu-check: plain Lightning on the same GPU, one fit per precision ...")
        lr = float(best.config["module.lr"])
        logger.info("gpu-check: a trial that outgrows its share of the card ...")
        oom = _oom_isolation(storage)
        fits = {p: _plain_lightning(p, epochs, storage / "data", lr) for p in PRECISIONS}
    plain = {p: times for p, (times, _) in fits.items()}
    samples = fits[PRECISIONS[0]][1]

    intervals = [(t.history[0].reported_at - (t.history[0].seconds or 0.0),
                  t.history[-1].reported_at) for t in trials
                 if t.history and t.history[0].reported_at and t.history[-1].reported_at]
    own_pid = os.getpid()
    processes_at_once = max((len([p for p in s["pids"] if p != own_pid])
                             for s in sampler.samples), default=0)
    per_trial: list[dict[str, Any]] = []
    for t in trials:
        asked = str(t.config.get("trainer.precision"))
        epoch_s = _steady_epoch_s([e.seconds or 0.0 for e in t.history])
        plain_epoch_s = _steady_epoch_s(plain[asked])
        per_trial.append({
            "trial_id": t.trial_id, "status": t.status, "epochs": t.epochs,
            "precision_asked": asked, "ran": t.ran,
            "val_acc": t.history[-1].metrics.get("val/acc") if t.history else None,
            "epoch_s": epoch_s, "plain_lightning_epoch_s": plain_epoch_s,
            "samples_per_s": samples / epoch_s,
            "plain_lightning_samples_per_s": samples / plain_epoch_s,
            "throughput_ratio": plain_epoch_s / epoch_s,
            "overhead_s": t.seconds - t.epochs * plain_epoch_s,
        })
    util = [s["util"] for s in sampler.samples]
    figures = {
        "gpu_name": gpu_name,
        "compute_capability": capability,
        "trials": TRIALS, "epochs": epochs, "gpus_per_worker": GPUS_PER_WORKER,
        "batch_size": BATCH, "samples_per_epoch": samples,
        "max_trials_at_once_on_one_gpu": _overlap(intervals),
        "max_gpu_processes_at_once": processes_at_once,
        "precisions_run": sorted({t.ran.get("precision", "?") for t in trials}),
        "precisions_as_asked": all(p["ran"].get("precision") == p["precision_asked"]
                                   for p in per_trial),
        "devices_run": sorted({t.ran.get("device", "?") for t in trials}),
        "best": {"trial_id": best.trial_id, "logged_val_acc": best.value,
                 "reloaded_val_acc": reloaded_acc, "config": best.config},
        "throughput_ratio_vs_plain_lightning": statistics.median(
            p["throughput_ratio"] for p in per_trial),
        "per_trial_overhead_s": statistics.median(p["overhead_s"] for p in per_trial),
        "gpu_utilization_mean_pct": statistics.fmean(util) if util else None,
        "gpu_utilization_max_pct": max(util) if util else None,
        "gpu_memory_max_mib": max((s["mem_mib"] for s in sampler.samples), default=None),
        "sweep_wall_s": sweep_s,
        "oom_isolation": oom,
        "oom_failed_alone": _failed_alone(oom),
        "per_trial": per_trial,
        "versions": _versions(),
    }
    return figures


def _failed_alone(oom: dict[str, Any]) -> bool:
    """Whether the hungry trial failed out of memory while its neighbour completed."""
    hungry, modest = oom.get(str(HUNGRY), {}), oom.get(str(MODEST), {})
    error = str(hungry.get("error")).lower()
    return (hungry.get("status") == "errored"
            and ("out of memory" in error or "outofmemory" in error)
            and modest.get("status") == "completed")


def _versions() -> dict[str, str]:
    from importlib import metadata

    return {name: metadata.version(name) for name in ("torch", "lightning", "ray", "optuna")}


def failures(figures: dict[str, Any]) -> list[str]:
    """What the check asks of a GPU run, unmet."""
    problems = []
    if figures["max_trials_at_once_on_one_gpu"] < 2:
        problems.append("no two trials ran on the GPU at once")
    if set(figures["precisions_run"]) != set(PRECISIONS):
        problems.append(f"precisions run {figures['precisions_run']}, not {PRECISIONS}")
    if not figures["precisions_as_asked"]:
        problems.append("a trial ran another precision than its configuration's")
    if not figures["oom_failed_alone"]:
        problems.append(f"out of memory, not failed alone: {figures['oom_isolation']}")
    best = figures["best"]
    if abs(best["reloaded_val_acc"] - best["logged_val_acc"]) > 0.01:
        problems.append(f"the loaded best model scores {best['reloaded_val_acc']:.4f}, "
                        f"logged {best['logged_val_acc']:.4f}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="each trial's epochs")
    parser.add_argument("--out", type=Path, default=OUT, help=f"JSON file (default {OUT})")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    figures = run(args.epochs)
    if figures is None:
        return 0
    merge_results(args.out, figures)
    for key in ("gpu_name", "max_trials_at_once_on_one_gpu", "max_gpu_processes_at_once",
                "precisions_run", "oom_failed_alone", "throughput_ratio_vs_plain_lightning",
                "per_trial_overhead_s",
                "gpu_utilization_mean_pct", "sweep_wall_s"):
        print(f"{key}: {figures[key]}")
    problems = failures(figures)
    for problem in problems:
        print(f"FAILED: {problem}")
    print(f"\nwritten: {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
