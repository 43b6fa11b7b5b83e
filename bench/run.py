"""The benchmark: ``make bench`` (or ``python -m bench.run``).

Runs the workload of :mod:`bench.workload` five ways in one invocation: (a) lightsweep (and (a')
with ``trial_runner: inline``), (b) Ray's
documented recipe, (c) Ray Tune + Lightning without Ray Train, (d) Optuna alone, (e) the floor,
plain Lightning fitting (a)'s trials one after another. Each sweep runs in a process of its own
whose whole tree's memory (PSS) is sampled. Prints a table and writes
``bench/results/latest.json``; every ratio compares figures taken in this same run.

``--bookkeeping`` measures the driver's own cost instead (:mod:`bench.bookkeeping`): trivial
trials through Ray Tune with and without lightsweep's driver callbacks, against the theoretical
time (trials x trial seconds / concurrency) that Ray's release tests hold Tune to (<= 1.28x).
``--alone`` runs only the trials alone, and times the imports a fresh worker process pays.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import workload as w
from bench.bookkeeping import bookkeeping
from bench.memory import PeakPss
from bench.results_file import RESULTS, merge_results

SWEEPS = ("lightsweep", "lightsweep_inline", "ray_recipe", "tune_plain_lightning", "optuna_alone")
LABELS = {
    "lightsweep": "(a) lightsweep",
    "lightsweep_inline": "(a') lightsweep, trial_runner: inline",
    "ray_recipe": "(b) Ray recipe: Tune + Train V2",
    "tune_plain_lightning": "(c) Tune + Lightning, no Train",
    "optuna_alone": "(d) Optuna alone",
    "plain_lightning": "(e) plain Lightning, serial",
    "lightsweep_alone": "(a1) lightsweep, one trial alone",
    "lightsweep_inline_alone": "(a1') lightsweep inline, one trial alone",
    "plain_lightning_alone": "(e1) plain Lightning, that fit alone",
}


def _run_variant(name: str, workdir: Path, *extra: str, out_name: str = "") -> dict[str, Any]:
    out = workdir / f"{out_name or name}.json"
    process = subprocess.Popen([sys.executable, "-m", "bench.variants", name, str(out), *extra],
                               cwd=Path(__file__).parents[1])
    with PeakPss(process.pid) as memory:
        code = process.wait()
    if code != 0:
        raise SystemExit(f"bench: variant {name} failed (exit {code})")
    result: dict[str, Any] = json.loads(out.read_text())
    result["peak_pss_gb"] = memory.peak / 1e9
    result["processes_at_peak"] = memory.processes
    result["pss_at_peak_by_process_gb"] = memory.by_process
    return result


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    trials = result["trials"]
    return {
        "wall_s": result["wall_s"],
        "trials": len(trials),
        "epochs": sum(t["epochs"] for t in trials),
        "best": max(t["value"] for t in trials),
        "per_trial_overhead_s": _median([t["wall_s"] - t["fit_s"] for t in trials]),
        "report_latency_s": _median([g for t in trials for g in t["report_gaps_s"]]),
        "throughput_samples_per_s": _median([t["samples"] / t["fit_s"] for t in trials]),
        # A Train trial's first run: its workers' process started how long before it, and
        # the wait from its start to their train loops (worker_starts.jsonl).
        "worker_head_start_s": _median([w["head_start_s"] for t in trials
                                        for w in t.get("workers", [])]),
        "worker_wait_s": _median([w["wait_s"] for t in trials for w in t.get("workers", [])]),
        "peak_pss_gb": result.get("peak_pss_gb"),
        "processes_at_peak": result.get("processes_at_peak"),
        "pss_at_peak_by_process_gb": result.get("pss_at_peak_by_process_gb"),
    }


def _machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(), "platform": platform.platform(),
        "python": platform.python_version(),
        **{pkg: metadata.version(pkg) for pkg in ("torch", "lightning", "ray", "optuna")},
    }


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:.3g}{unit}" if isinstance(value, float) else f"{value}{unit}"


def _alone(workdir: Path) -> dict[str, dict[str, Any]]:
    """The same fit inside a trial (each runner) and in plain Lightning, each with the machine
    to itself."""
    (workdir / "alone.json").write_text(json.dumps([w.ALONE_CONFIG]))
    raw = {}
    for name in ("lightsweep_alone", "lightsweep_inline_alone"):
        print(f"bench: running {LABELS[name]} ...", flush=True)
        raw[name] = _run_variant(name, workdir)
    print(f"bench: running {LABELS['plain_lightning_alone']} ...", flush=True)
    raw["plain_lightning_alone"] = _run_variant(
        "plain_lightning", workdir, str(workdir / "alone.json"), out_name="plain_lightning_alone")
    return raw


def _alone_figures(summary: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "alone_per_trial_overhead_s": summary["lightsweep_alone"]["per_trial_overhead_s"],
        "inline_alone_per_trial_overhead_s":
            summary["lightsweep_inline_alone"]["per_trial_overhead_s"],
        # What bounds the lone Train trial: its worker, started by the sweep's driver as soon as
        # Ray was up, still importing when the trial's run starts.
        "alone_worker_head_start_s": summary["lightsweep_alone"]["worker_head_start_s"],
        "alone_worker_wait_s": summary["lightsweep_alone"]["worker_wait_s"],
    }


# What a fresh process pays before a trial's fit can start, module by module, each import timed
# after the one before it (a Train worker imports them in this order).
IMPORTS = ("torch", "lightning.pytorch", "ray.train.torch")


def _import_seconds() -> dict[str, float]:
    script = ("import importlib, json, time\nout = {}\n"
              f"for name in {IMPORTS!r}:\n"
              "    t = time.perf_counter(); importlib.import_module(name)\n"
              "    out[name] = time.perf_counter() - t\n"
              "print(json.dumps(out))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    seconds: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return seconds


def alone() -> dict[str, Any]:
    """One trial alone on an idle machine (each runner) against the same fit in plain
    Lightning, and what importing torch, Lightning and Ray Train costs a fresh process there:
    the part of a trial's start-up that a pool of warm worker processes would hide."""
    imports = [_import_seconds() for _ in range(2)]  # the second with the files in page cache
    with tempfile.TemporaryDirectory(prefix="lightsweep-bench-") as tmp:
        raw = _alone(Path(tmp))
    summary = {name: _summary(result) for name, result in raw.items()}
    figures = {
        **_alone_figures(summary),
        "plain_lightning_alone_overhead_s":
            summary["plain_lightning_alone"]["per_trial_overhead_s"],
        "import_s": imports[-1], "import_s_first": imports[0],
        "import_total_s": sum(imports[-1].values()),
    }
    for key, value in figures.items():
        print(f"{key}: {value}")
    return {"mode": "alone", "machine": _machine(), **figures, "variants": summary, "raw": raw}


def sweeps() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lightsweep-bench-") as tmp:
        workdir = Path(tmp)
        raw = {}
        for name in SWEEPS:
            print(f"bench: running {LABELS[name]} ...", flush=True)
            raw[name] = _run_variant(name, workdir)
        # The floor fits exactly lightsweep's trials, each for the epochs it ran.
        configs = [{"lr": t["config"]["module.lr"], "batch_size": t["config"][
            "datamodule.batch_size"], "epochs": t["epochs"]} for t in raw["lightsweep"]["trials"]]
        (workdir / "configs.json").write_text(json.dumps(configs))
        print(f"bench: running {LABELS['plain_lightning']} ...", flush=True)
        raw["plain_lightning"] = _run_variant("plain_lightning", workdir,
                                              str(workdir / "configs.json"))
        raw.update(_alone(workdir))
    summary = {name: _summary(result) for name, result in raw.items()}
    ours = summary["lightsweep"]
    inline = summary["lightsweep_inline"]
    floor = summary["plain_lightning"]
    figures = {
        "per_trial_overhead_s": ours["per_trial_overhead_s"],
        "report_latency_s": ours["report_latency_s"],
        "ratio_vs_ray_recipe": ours["wall_s"] / summary["ray_recipe"]["wall_s"],
        "ratio_vs_tune_plain_lightning": ours["wall_s"] / summary["tune_plain_lightning"]["wall_s"],
        "ratio_vs_optuna_alone": ours["wall_s"] / summary["optuna_alone"]["wall_s"],
        "peak_pss_gb": ours["peak_pss_gb"],
        "inline_per_trial_overhead_s": inline["per_trial_overhead_s"],
        **_alone_figures(summary),
        "inline_ratio_vs_tune_plain_lightning":
            inline["wall_s"] / summary["tune_plain_lightning"]["wall_s"],
        "inline_ratio_vs_train_runner": inline["wall_s"] / ours["wall_s"],
        "inline_peak_pss_gb": inline["peak_pss_gb"],
        # Samples/s of the same fit inside a lightsweep trial and in plain Lightning, each
        # alone: what running in a trial costs the training loop.
        "inner_throughput_ratio": summary["lightsweep_alone"]["throughput_samples_per_s"]
        / summary["plain_lightning_alone"]["throughput_samples_per_s"],
        # The sweep's trials against the floor's fits of the same configurations: adds the
        # contention of two trials (and the next trials' start-up) on this machine's cores.
        "inner_throughput_ratio_in_sweep": ours["throughput_samples_per_s"]
        / floor["throughput_samples_per_s"],
    }
    header = ["variant", "wall s", "trials", "epochs", "best", "overhead/trial s",
              "report s", "samples/s in fit", "peak PSS GB", "processes"]
    rows = [[LABELS[name], _fmt(s["wall_s"]), _fmt(s["trials"]), _fmt(s["epochs"]),
             _fmt(s["best"]), _fmt(s["per_trial_overhead_s"]), _fmt(s["report_latency_s"]),
             _fmt(s["throughput_samples_per_s"]), _fmt(s["peak_pss_gb"]),
             _fmt(s["processes_at_peak"])] for name, s in summary.items()]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(c.ljust(wd) for c, wd in zip(row, widths, strict=True)))
    print()
    for key, value in figures.items():
        print(f"{key}: {_fmt(value)}")
    return {"mode": "sweeps", "machine": _machine(), "workload": {
        "trials": w.TRIALS, "max_epochs": w.MAX_EPOCHS, "concurrency": w.CONCURRENCY,
        "seed": w.SEED}, **figures, "variants": summary, "raw": raw}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bookkeeping", action="store_true",
                        help="measure the driver's per-report cost on trivial trials instead")
    parser.add_argument("--trials", type=int, default=10_000, help="with --bookkeeping")
    parser.add_argument("--epochs", type=int, default=1,
                        help="with --bookkeeping: reports per trial")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --bookkeeping: rounds of stock, lightsweep, lightsweep, stock "
                        "(0: stock then lightsweep once)")
    parser.add_argument("--alone", action="store_true",
                        help="only one trial alone per runner, and the imports' cost")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON file (default {RESULTS})")
    args = parser.parse_args()
    if args.bookkeeping:
        figures = {"mode": "bookkeeping", "machine": _machine(),
                   **bookkeeping(args.trials, args.epochs, args.rounds)}
        # One report per trial (Ray's release test) at the top; many, for the per-report cost,
        # beside it: the two runs share one results file.
        result = figures if args.epochs == 1 else {"many_reports": figures}
    elif args.alone:
        result = alone()
    else:
        result = sweeps()
    merge_results(args.out, result)
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
