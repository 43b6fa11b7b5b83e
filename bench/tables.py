"""The documentation's tables of bench figures, generated from ``bench/results/*.json``.

A page marks a table with ``<!-- bench-table: NAME -->`` (on a line of its own); the site's build
(``docs/hooks/bench_tables.py``) puts :func:`render` of it there. Each table ends with the runs
its figures came from: the result file, the commit, the date and the machine (CPU model, cores,
GPUs), as :func:`bench.results_file.merge_results` recorded them beside each figure. A figure
with no such record is refused (:class:`MissingProvenance`), so no page quotes a figure whose run
nobody can name.

``python -m bench.tables NAME`` prints one table; with no name, every table's name.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.results_file import PROVENANCE_KEY

RESULTS_DIR = Path(__file__).parent / "results"
MARKER = re.compile(r"^<!-- bench-table: ([a-z0-9_]+) -->$", re.MULTILINE)


class MissingProvenance(ValueError):
    """A table read a figure whose result file does not say which run made it."""


class Figures:
    """One result file's figures; notes which top-level figures a table read, for its caption."""

    def __init__(self, name: str, results_dir: Path = RESULTS_DIR) -> None:
        self.name = name
        self.path = results_dir / f"{name}.json"
        self._data: dict[str, Any] = json.loads(self.path.read_text())
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return self._data[key]

    def runs(self) -> list[dict[str, Any]]:
        """The distinct runs that made the figures read so far."""
        recorded = self._data.get(PROVENANCE_KEY, {})
        missing = sorted(key for key in self.read if key not in recorded)
        if missing:
            raise MissingProvenance(
                f"{self.path.name}: no run recorded for {', '.join(missing)}; rerun the bench "
                "that writes it (bench.results_file.merge_results records the run)")
        distinct: list[dict[str, Any]] = []
        for key in sorted(self.read):
            if recorded[key] not in distinct:
                distinct.append(recorded[key])
        return distinct


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [self.header, ["---"] * len(self.header), *self.rows]
        return "\n".join("| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |"
                         for line in lines)


def number(value: float | None, digits: int = 3) -> str:
    """``digits`` significant digits, thousands separated (``4,330``, ``0.0420``); ``-`` for none."""
    if value is None:
        return "-"
    if abs(value) >= 10 ** digits:
        return f"{round(value):,}"
    text = f"{value:#.{digits}g}"
    return text.rstrip(".") if "e" not in text else f"{value:.2g}"


def _machine(run: dict[str, Any]) -> str:
    machine = run.get("machine", {})
    cpu = machine.get("cpu") or "CPU model not recorded"
    cores = machine.get("cores")
    gpus = machine.get("gpus") or []
    parts = [cpu, f"{cores} cores" if cores else "cores not recorded"]
    parts.append(", ".join(gpus) if gpus else "no GPU")
    return ", ".join(parts)


def caption(sources: Iterable[Figures]) -> str:
    """Where a table's figures came from: each file and the runs that made what it read."""
    lines = []
    for figures in sources:
        for run in figures.runs():
            commit = run.get("commit", "unknown")
            # Figures older than per-figure records carry the commit that recorded them.
            which = "recorded in commit" if run.get("recorded_in_commit") else "commit"
            edited = " with uncommitted changes" if commit.endswith("+changes") else ""
            lines.append(f"`bench/results/{figures.path.name}`: {which} `{commit[:12]}`{edited}, "
                         f"{run.get('date', 'date not recorded')}, {_machine(run)}.")
    return "Run: " + " ".join(lines) if len(lines) == 1 else \
        "Runs:\n\n" + "\n".join(f"- {line}" for line in lines)


# --- the tables -----------------------------------------------------------------------------

_VARIANTS = {
    "lightsweep": "(a) lightsweep, Train runner (the default)",
    "lightsweep_inline": "(a') lightsweep, inline runner",
    "ray_recipe": "(b) Ray's recipe: Tune function + Train TorchTrainer",
    "tune_plain_lightning": "(c) Ray Tune + Lightning, no Ray Train",
    "optuna_alone": "(d) Optuna alone, Lightning's pruning callback",
    "plain_lightning": "(e) plain Lightning, (a)'s trials one after another",
    "lightsweep_alone": "(a1) lightsweep, one trial alone",
    "lightsweep_inline_alone": "(a1') lightsweep inline, one trial alone",
    "plain_lightning_alone": "(e1) plain Lightning, that fit alone",
}


def _speed(results_dir: Path) -> tuple[Table, list[Figures]]:
    latest = Figures("latest", results_dir)
    table = Table(["variant", "sweep wall s", "per-trial overhead s", "end-of-epoch gap s",
                   "samples/s in fit", "peak PSS GB (processes)"])
    for key, name in _VARIANTS.items():
        v = latest["variants"].get(key)
        if v is None:
            continue
        gap = "-" if v["report_latency_s"] is None else number(v["report_latency_s"])
        table.rows.append([name, number(v["wall_s"]), number(v["per_trial_overhead_s"]), gap,
                           number(v["throughput_samples_per_s"]),
                           f"{number(v['peak_pss_gb'])} ({v['processes_at_peak']})"])
    return table, [latest]


def _speed_ratios(results_dir: Path) -> tuple[Table, list[Figures]]:
    latest = Figures("latest", results_dir)
    table = Table(["ratio", "value"])
    for key, what in [
        ("ratio_vs_ray_recipe", "(a) / (b): sweep wall time, lightsweep over Ray's recipe"),
        ("ratio_vs_tune_plain_lightning", "(a) / (c): over Tune without Train"),
        ("ratio_vs_optuna_alone", "(a) / (d): over Optuna alone"),
        ("inline_ratio_vs_train_runner", "(a') / (a): inline over the Train runner"),
        ("inline_ratio_vs_tune_plain_lightning", "(a') / (c): inline over Tune without Train"),
        ("inner_throughput_ratio", "(a1) / (e1): samples/s of one trial's fit over plain "
                                   "Lightning's"),
        ("inner_throughput_ratio_in_sweep", "(a) / (e): the same inside the sweep"),
    ]:
        table.rows.append([what, number(latest[key]) + "x"])
    return table, [latest]


def _alone(results_dir: Path) -> tuple[Table, list[Figures]]:
    cpu, gpu = Figures("alone", results_dir), Figures("alone_gpu_node", results_dir)
    table = Table(["figure", "2-core CPU machine", "16-core machine with one H100"])

    def both(key: str) -> list[str]:
        return [number(cpu[key]), number(gpu[key])]

    table.rows.append(["a Train trial alone: seconds besides its fit",
                       *both("alone_per_trial_overhead_s")])
    table.rows.append(["an inline trial alone: seconds besides its fit",
                       *both("inline_alone_per_trial_overhead_s")])
    table.rows.append(["plain Lightning: seconds besides the same fit",
                       *both("plain_lightning_alone_overhead_s")])
    for module in cpu["import_s"]:
        table.rows.append([f"`import {module}` in a fresh process, s",
                           number(cpu["import_s"][module]), number(gpu["import_s"][module])])
    table.rows.append(["the worker's imports in all, s", *both("import_total_s")])
    return table, [cpu, gpu]


def _warm_pool(results_dir: Path) -> tuple[Table, list[Figures]]:
    pool = Figures("warm_pool", results_dir)
    table = Table(["figure", "started cold", "started ahead"])
    table.rows.append([f"an actor importing the fit's modules: seconds to answer "
                       f"(median of {pool['rounds']})", number(pool["cold_start_s"]["median"]),
                       number(pool["prestarted_start_s"]["median"])])
    for key, cpus in [("sequential_40_epochs_0.5_cpu", "0.5"), ("sequential_40_epochs", "1")]:
        run = pool[key]
        cold, warm = run["warm_workers_0"], run["warm_workers_1"]
        what = f"{run['trials']} trials one at a time, {cpus} CPU per worker"
        table.rows.append([f"{what}: seconds besides the fit per later trial",
                           number(cold["per_trial_overhead_s_after_first"]),
                           number(warm["per_trial_overhead_s_after_first"])])
        table.rows.append([f"{what}: median fit s", number(cold["fit_s_median"]),
                           number(warm["fit_s_median"])])
        table.rows.append([f"{what}: sweep wall s", number(cold["sweep_wall_s"]),
                           number(warm["sweep_wall_s"])])
    table.rows.append(["PSS of an idle worker started ahead, GB", "-",
                       number(pool["idle_worker_pss_gb"])])
    return table, [pool]


def _sync_actor(results_dir: Path) -> tuple[Table, list[Figures]]:
    sync = Figures("sync_actor", results_dir)
    table = Table(["synchronization actor", "seconds to first answer (median)", "CPU s",
                   "PSS GB"])
    table.rows.append(["a fresh one per run (Ray's way)",
                       number(sync["fresh_to_first_answer_s"]["median"]),
                       number(sync["fresh_process_cpu_s"]), number(sync["fresh_process_pss_gb"])])
    table.rows.append(["one per trial process, renewed per run",
                       number(sync["renewed_to_first_answer_s"]["median"]), "-", "-"])
    return table, [sync]


def _default_sweep(results_dir: Path) -> tuple[Table, list[Figures]]:
    latest = Figures("latest", results_dir)
    table = Table(["trial runner", "wall s", "epochs", "completed / stopped by ASHA",
                   "s per epoch", "best val/acc"])
    for runner, run in latest["default_sweep"].items():
        if not isinstance(run, dict):
            continue
        statuses = run["statuses"]
        table.rows.append([runner, number(run["wall_s"]), str(run["epochs"]),
                           f"{statuses.count('completed')} / {statuses.count('stopped')}",
                           number(run["s_per_epoch"]), number(run["best"], 4)])
    return table, [latest]


def _bookkeeping(results_dir: Path) -> tuple[Table, list[Figures]]:
    table = Table(["trials x reports", "theoretical s", "stock Tune s", "with lightsweep s",
                   "lightsweep / stock", "callbacks s (ms per report)",
                   "driver CPU s, stock / lightsweep", "driver peak RSS MB, stock / lightsweep"])
    sources = []
    for name, part in [("bookkeeping_3000", None), ("bookkeeping_5000", None),
                       ("bookkeeping_10000_ab", None), ("bookkeeping", "many_reports")]:
        figures = Figures(name, results_dir)
        sources.append(figures)
        if part is None:
            run = {key: figures[key] for key in ("trials", "epochs", "theoretical_s", "tune_s",
                                                 "lightsweep_s", "lightsweep_vs_tune",
                                                 "callback_s", "driver_peak_rss_mb")}
            cpu = figures["driver_cpu_s"] if name != "bookkeeping_3000" else None
        else:
            run, cpu = figures[part], None
        reports = run["trials"] * run["epochs"]
        table.rows.append([
            f"{run['trials']:,} x {run['epochs']}", number(run["theoretical_s"]),
            number(run["tune_s"]), number(run["lightsweep_s"]),
            number(run["lightsweep_vs_tune"]) + "x",
            f"{number(run['callback_s'])} ({number(1000 * run['callback_s'] / reports)})",
            "-" if cpu is None else f"{number(cpu['tune'])} / {number(cpu['lightsweep'])}",
            f"{number(run['driver_peak_rss_mb']['tune'])} / "
            f"{number(run['driver_peak_rss_mb']['lightsweep'])}"])
    return table, sources


def _search(results_dir: Path) -> tuple[Table, list[Figures]]:
    latest = Figures("latest", results_dir)
    search = latest["search"]
    best, tuned, random = search["best_trial"], search["tuned"], search["random"]
    table = Table(["figure", "value"])
    table.rows += [
        ["the best trial's accuracy on MNIST-1D's test split (by val/acc "
         f"{number(best['val_acc'], 4)}, epoch {best['epoch']})",
         number(latest["mnist1d_best_test_acc"])],
        ["the paper's CNN, for reference", number(search["paper_cnn_test_acc"])],
        ["the sweep: wall s, epochs", f"{number(tuned['wall_s'])}, {tuned['epochs']}"],
        ["random search without early stopping: wall s, epochs, best val/acc",
         f"{number(random['wall_s'])}, {random['epochs']}, {number(random['best'], 4)}"],
        ["epochs the sweep ran until a trial reached random search's best, over random "
         "search's epochs", f"{tuned['epochs_to_reach_random_best']} / {random['epochs']} = "
         f"{number(latest['epochs_ratio_vs_random_search'])}"],
        ["the same over the epochs random search ran until its best",
         f"{tuned['epochs_to_reach_random_best']} / {random['epochs_to_its_best']} = "
         f"{number(latest['epochs_ratio_vs_random_search_to_its_best'])}"],
    ]
    return table, [latest]


def _regret(results_dir: Path) -> tuple[Table, list[Figures]]:
    latest = Figures("latest", results_dir)
    regret = latest["regret"]
    table = Table(["figure", "lightsweep's searcher", "Ray's OptunaSearch", "ratio"])
    for what, key in [("median over seeds of the mean final regret over tasks", "median_regret"),
                      ("mean final regret", "mean_regret")]:
        ours, stock = regret[key]["truthful"], regret[key]["stock"]
        table.rows.append([what, number(ours), number(stock), number(ours / stock, 4)])
    table.rows.append(["searches whose proposals differed at all",
                       f"{regret['runs_whose_proposals_differed']} of {regret['runs']}", "", ""])
    return table, [latest]


def _pareto(results_dir: Path) -> tuple[Table, list[Figures]]:
    latest = Figures("latest", results_dir)
    seeds = latest["pareto"]["seeds"]
    table = Table(["figure", "value", "per seed"])
    table.rows.append(["hypervolume, the sweep's over random search's",
                       number(latest["mo_hypervolume_ratio_vs_random"]),
                       ", ".join(number(x) for x in latest["pareto"]["hypervolume_ratios"])])
    table.rows.append(["the same, random search cut at the epochs the sweep trained",
                       number(latest["mo_hypervolume_ratio_vs_random_same_epochs"]),
                       ", ".join(number(x) for x in
                                 latest["pareto"]["hypervolume_ratios_same_epochs"])])
    total = latest["pareto"]["trials"] * latest["pareto"]["max_epochs"]
    table.rows.append([f"epochs early stopping did not train, of {total}",
                       number(latest["mo_epochs_saved_fraction"]),
                       ", ".join(str(s["pareto"]["epochs_saved"]) for s in seeds)])
    table.rows.append(["trials of the final front that ASHA by val/acc alone would have stopped",
                       number(latest["mo_front_stopped_by_single_metric_asha"]),
                       ", ".join(f"{s['pareto']['front_stopped_by_single_metric_asha']} of "
                                 f"{s['pareto']['front']}" for s in seeds)])
    return table, [latest]


def _pbt_exploits(results_dir: Path) -> tuple[Table, list[Figures]]:
    latest = Figures("latest", results_dir)
    exploits = latest["pbt_exploits"]
    table = Table(["run", "exploits that changed the rate", "applied", "wall s"])
    for key, name, fraction in [("lightsweep", "lightsweep", "pbt_lr_applied_fraction"),
                                ("ray_recipe", "Ray Tune's recipe", "ray_pbt_lr_applied_fraction")]:
        run = exploits[key]
        table.rows.append([name, str(run["exploits"]),
                           f"{run['applied']} ({number(latest[fraction], 2)})",
                           number(run["wall_s"])])
    return table, [latest]


def _pbt_vs_asha(results_dir: Path) -> tuple[Table, list[Figures]]:
    latest = Figures("latest", results_dir)
    runs = latest["pbt_vs_asha"]
    table = Table(["run", "best test accuracy per seed", "mean", "epochs trained",
                   "epochs until val/acc >= 0.94"])
    for key, name in [("pbt", "PBT"), ("asha", "TPE + ASHA")]:
        seeds = runs[key]
        accs = [s["best_test_acc"] for s in seeds]
        table.rows.append([
            name, ", ".join(number(a) for a in accs), number(sum(accs) / len(accs)),
            ", ".join(str(s["epochs"]) for s in seeds),
            ", ".join("never" if s["epochs_to_val_0_94"] is None else str(s["epochs_to_val_0_94"])
                      for s in seeds)])
    return table, [latest]


def _chaos(results_dir: Path) -> tuple[Table, list[Figures]]:
    chaos = Figures("chaos", results_dir)
    kills = chaos["kills"]
    table = Table(["kills (worker / trial process / driver)", "trials finished",
                   "epochs duplicated / missing / out of order",
                   "last checkpoint holds the last reported metric",
                   "Optuna told of each trial once", "wall vs the same sweep without kills"])
    trials = chaos["trials"]
    table.rows.append([
        f"{chaos['kills_total']} ({kills['worker']} / {kills['trial_process']} / "
        f"{kills['driver']}), {chaos['driver_runs']} driver runs",
        f"{chaos['trials_finished']} of {trials}",
        f"{chaos['epochs_duplicated']} / {chaos['epochs_missing']} / "
        f"{chaos['epochs_out_of_order']}",
        f"{round(chaos['final_checkpoint_matches_final_metric'] * trials)} of {trials}",
        f"{chaos['optuna_trials_told_once']} of {trials}",
        f"{number(chaos['wall_s'])} s vs {number(chaos['wall_s_no_chaos'])} s "
        f"({number(chaos['wall_ratio_vs_no_chaos'])}x)"])
    return table, [chaos]


def _preemption(results_dir: Path) -> tuple[Table, list[Figures]]:
    chaos = Figures("chaos", results_dir)
    run = chaos["preemption"]
    table = Table(["the sweep", "epochs trained", "epochs lost", "driver exit codes", "wall s"])
    for key, what in [("none", "not preempted"),
                      ("notice", "SIGTERM (the platform's notice), then rerun"),
                      ("no_notice", "the driver's session SIGKILLed, then rerun")]:
        case = run[key]
        table.rows.append([what, str(case["epochs_trained"]), str(case["epochs_lost"]),
                           ", ".join(str(c) for c in case["driver_exit_codes"]),
                           number(case["wall_s"])])
    return table, [chaos]


def _gpu(results_dir: Path) -> tuple[Table, list[Figures]]:
    gpu = Figures("gpu", results_dir)
    table = Table(["precision asked", "ran", "samples/s in a trial (sharing the GPU)",
                   "plain Lightning alone", "ratio", "per-trial overhead s"])
    for trial in gpu["per_trial"]:
        if trial.get("samples_per_s") is None:
            continue
        table.rows.append([trial["precision_asked"], trial["ran"]["precision"],
                           number(trial["samples_per_s"]),
                           number(trial["plain_lightning_samples_per_s"]),
                           number(trial["throughput_ratio"], 2), number(trial["overhead_s"])])
    table.rows.append(["median", "", "", "", number(gpu["throughput_ratio_vs_plain_lightning"], 2),
                       number(gpu["per_trial_overhead_s"])])
    return table, [gpu]


def _gpu_checks(results_dir: Path) -> tuple[Table, list[Figures]]:
    gpu = Figures("gpu", results_dir)
    best = gpu["best"]
    table = Table(["check", "result"])
    table.rows += [
        ["trials running on one GPU at once; worker processes `nvidia-smi` listed at once",
         f"{gpu['max_trials_at_once_on_one_gpu']}; {gpu['max_gpu_processes_at_once']}"],
        ["precisions run, each trial's as its configuration asked",
         f"{', '.join(gpu['precisions_run'])}: {'yes' if gpu['precisions_as_asked'] else 'no'}"],
        ["devices the trials ran on", ", ".join(gpu["devices_run"])],
        ["the best model reloaded: val/acc logged, scored again",
         f"{number(best['logged_val_acc'], 4)}, {number(best['reloaded_val_acc'], 4)}"],
    ]
    for share, trial in gpu["oom_isolation"].items():
        error = (trial["error"] or "").split(".")[0]
        table.rows.append([f"the trial asking for {share} of the card's memory",
                           f"{trial['status']} after {trial['epochs']} epochs"
                           + (f" ({error})" if error else "")])
    table.rows.append(["GPU utilisation over the sweep: mean, peak; memory at most",
                       f"{number(gpu['gpu_utilization_mean_pct'], 2)}%, "
                       f"{number(gpu['gpu_utilization_max_pct'], 2)}%, "
                       f"{number(gpu['gpu_memory_max_mib'])} MiB"])
    return table, [gpu]


TABLES: dict[str, Callable[[Path], tuple[Table, list[Figures]]]] = {
    "speed": _speed, "speed_ratios": _speed_ratios, "alone": _alone, "warm_pool": _warm_pool,
    "sync_actor": _sync_actor, "default_sweep": _default_sweep, "bookkeeping": _bookkeeping,
    "search": _search, "regret": _regret, "pareto": _pareto, "pbt_exploits": _pbt_exploits,
    "pbt_vs_asha": _pbt_vs_asha, "chaos": _chaos, "preemption": _preemption, "gpu": _gpu,
    "gpu_checks": _gpu_checks,
}


def render(name: str, results_dir: Path = RESULTS_DIR) -> str:
    """The table ``name`` in Markdown, followed by the runs its figures came from."""
    if name not in TABLES:
        raise KeyError(f"no bench table {name!r}; the tables: {', '.join(TABLES)}")
    table, sources = TABLES[name](results_dir)
    return f"{table.markdown()}\n\n{caption(sources)}"


def fill(markdown: str, results_dir: Path = RESULTS_DIR) -> str:
    """``markdown`` with every ``<!-- bench-table: NAME -->`` line replaced by its table."""
    return MARKER.sub(lambda m: render(m.group(1), results_dir), markdown)


def main(argv: list[str]) -> int:
    if not argv:
        print("\n".join(TABLES))
        return 0
    print(render(argv[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
