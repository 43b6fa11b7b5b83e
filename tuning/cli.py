"""The command line: ``launch`` (the default), ``resume``, ``leaderboard``, ``best``, ``report``
and ``validate``.

``run_tune.py`` and the ``lightsweep`` console script both call :func:`main`. Bad input ends with
a message naming the field and the fix, and exit code 2.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuning._internals.logs import VERBOSE_ENV
from tuning.config.checks import check_launch
from tuning.config.spec import load_spec
from tuning.driver.versions import warn_untested_versions
from tuning.errors import REQUEUE_EXIT, PreemptedError, StorageFullError, SweepError
from tuning.platforms.kubernetes import STORAGE_MOUNT, RayJobManifest
from tuning.platforms.slurm import SlurmJob, submit
from tuning.read.formats import metric_text
from tuning.read.results import fetch_best, pareto_front
from tuning.record import Ledger
from tuning.record.budget import budget_line, budget_spent
from tuning.record.files import atomic_write_text
from tuning.record.layout import USER_ERROR_FILE, trial_path
from tuning.record.location import Location

if TYPE_CHECKING:
    from tuning.driver.sweep import SweepOutcome

logger = logging.getLogger("lightsweep")

COMMANDS = ("launch", "resume", "leaderboard", "best", "report", "validate", "slurm", "k8s")
# Commands that take launch's flags as they are, for the job they write.
PLATFORM_COMMANDS = ("slurm", "k8s")
CONFIG_HELP = ("a LightningCLI config file as the base of the sweep's arguments, after the sweep "
               "file's config: (repeatable; later files win, as in LightningCLI)")
VERBOSE_HELP = ("show every line Ray, Tune, Optuna and Lightning print (by default the console "
                "shows lightsweep's lines and your code's own; also LIGHTSWEEP_VERBOSE=1)")
STOCK_RAY_HELP = ("run every trial through Ray's documented paths only: Train's own controller, "
                  "cleaner and synchronization actor, no workers started ahead "
                  "(also LIGHTSWEEP_STOCK_RAY=1)")
EXPERIMENT_HELP = "experiment directory (runs/<name>), or its cloud URI (s3://bucket/runs/<name>)"
HYDRA_HELP = ("a Hydra project's primary config (configs/train.yaml), then Hydra overrides "
              "(hparams_search=NAME trainer.max_epochs=5 +trainer.limit_train_batches=40): the "
              "composed config is the sweep's base, its Optuna sweeper config the search")
DEFAULT_SWEEP = str(resources.files("search_spaces") / "mnist1d_cnn.yaml")


def _budget_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--budget-worker-hours", type=_positive_float, metavar="H",
                   help="stop the sweep once its trials ran H worker-hours (GPU-hours with GPU "
                   "workers): budget.worker_hours")
    p.add_argument("--budget-wall-hours", type=_positive_float, metavar="H",
                   help="stop the sweep once its trials ran H hours: budget.wall_hours")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not above 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _job_parser(sub: Any, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    """A platform command's parser (``slurm``, ``k8s``): the sweep and its fixed name; the
    flags it does not know are launch's, passed on to the job."""
    p: argparse.ArgumentParser = sub.add_parser(
        name, help=summary, description=f"{description} Other flags are launch's, passed on.")
    p.add_argument("sweep", nargs="?", help="sweep file (none with --hydra)")
    p.add_argument("--name", help="the experiment's name (default: sweep name and time)")
    return p


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lightsweep",
        description="Tune PyTorch Lightning models on Ray: Optuna search, ASHA early stopping, "
        "Ray Train DDP trials. With no arguments, launches the default sweep.",
    )
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("launch", help="run a sweep (the default command)",
                       description="Run a sweep to the end, showing progress; prints the "
                       "leaderboard and the best trial.")
    p.add_argument("sweep", nargs="?",
                   help="sweep file (default: search_spaces/mnist1d_cnn.yaml, or none with --hydra)")
    p.add_argument("--hydra", nargs="+", metavar=("CONFIG", "OVERRIDE"), help=HYDRA_HELP)
    p.add_argument("--metric", help="the metric to optimize, as the module logs it (metric; a "
                   "Hydra config's optimized_metric otherwise)")
    p.add_argument("--mode", choices=("max", "min"), help="whether larger --metric is better "
                   "(mode; a Hydra sweeper's direction otherwise)")
    p.add_argument("--num-samples", type=_positive_int, help="trials to run (search.num_samples)")
    p.add_argument("--max-epochs", type=_positive_int, help="epochs per trial at most "
                   "(scheduler.max_epochs)")
    p.add_argument("--workers-per-trial", type=_positive_int,
                   help="DDP workers per trial (resources.workers_per_trial)")
    p.add_argument("--max-concurrent", type=_positive_int,
                   help="trials at once at most (resources.max_concurrent)")
    p.add_argument("--trial-runner", choices=("train", "inline"),
                   help="train: each trial a Ray Train run; inline: one-worker trials fit in "
                   "Tune's reused trial processes (resources.trial_runner)")
    p.add_argument("--seed", type=int, help="search seed (search.seed)")
    p.add_argument("--storage", help="where experiments go: a directory or a cloud URI such as "
                   "s3://bucket/runs (storage; default runs)")
    p.add_argument("--name", help="experiment name (default: sweep name and time); never reused")
    p.add_argument("--if-exists", choices=("refuse", "resume"), default="refuse",
                   help="when the experiment --name exists: refuse (exit 2), or resume it (a "
                   "finished one says where its results are): the same command, rerun by a "
                   "platform after any death, continues the sweep")
    p.add_argument("--max-retries", type=int, help="restarts of a trial's workers after a worker "
                   "or node dies (failures.max_retries)")
    p.add_argument("--fail-fast", action="store_true", default=None,
                   help="stop the sweep at the first trial error (failures.fail_fast)")
    p.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--warm-start", metavar="EXPERIMENT", help="start the search from an earlier "
                   "sweep of the same space, metric and mode: its ended trials seed Optuna's "
                   "study (" + EXPERIMENT_HELP + ")")
    p.add_argument("--smoke", action="store_true", help="a quick check of the sweep file before a "
                   "long run: 2 trials of 2 epochs on 4 batches each, end to end, W&B disabled")
    p.add_argument("--config", action="append", metavar="FILE", help=CONFIG_HELP)
    wandb = p.add_mutually_exclusive_group()
    wandb.add_argument("--wandb-project", metavar="PROJECT", help="log each trial as a W&B run "
                       "in PROJECT (wandb.project; offline unless an API key is configured)")
    wandb.add_argument("--no-wandb", dest="wandb", action="store_false", default=None,
                       help="no W&B runs (wandb.enabled: false)")
    p.add_argument("--stock-ray", action="store_true", help=STOCK_RAY_HELP)
    p.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)

    _budget_flags(p)

    p = sub.add_parser("resume", help="finish an interrupted sweep, or extend a finished one",
                       description="Finish a sweep whose driver died or was interrupted: finished "
                       "trials are kept, running ones continue from their last checkpoint. "
                       "With --num-samples, the sweep (finished first, if it was not) gains "
                       "trials, proposed by the same Optuna study; with --max-epochs, trials "
                       "train on from their last checkpoints.")
    p.add_argument("experiment", help=EXPERIMENT_HELP)
    p.add_argument("--num-samples", type=_positive_int, metavar="N",
                   help="the sweep's trials in all, earlier ones included: the trials above "
                   "its search.num_samples run in the same experiment")
    p.add_argument("--max-epochs", type=_positive_int, metavar="M",
                   help="train trials on to M epochs from their last checkpoints: those that ran "
                   "the sweep's scheduler.max_epochs (the --top K best of them), or --trials")
    p.add_argument("--top", type=_positive_int, metavar="K",
                   help="with --max-epochs: the K best of the trials that ran to the end")
    p.add_argument("--trials", nargs="+", metavar="ID",
                   help="with --max-epochs: these trials (any that kept a checkpoint)")
    p.add_argument("--sweep", metavar="FILE",
                   help="the sweep file, changed (its space, its search.num_samples): the new "
                   "trials come from it")
    _budget_flags(p)
    p.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--stock-ray", action="store_true", help=STOCK_RAY_HELP)
    p.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)

    p = sub.add_parser("leaderboard", help="every trial of an experiment, best first",
                       description="Every trial of an experiment, best first; works while the "
                       "sweep runs.")
    p.add_argument("experiment", help=EXPERIMENT_HELP)
    p.add_argument("--json", action="store_true", help="print JSON: a list of trial objects")

    p = sub.add_parser("best", help="the best trial of an experiment",
                       description="The best trial over all its epochs, with a checkpoint that "
                       "Class.load_from_checkpoint(path) loads. With several objectives: the "
                       "Pareto front, and its member best in --objective.")
    p.add_argument("experiment", help=EXPERIMENT_HELP)
    p.add_argument("--json", action="store_true", help="print JSON: one object (with several "
                   "objectives and no --objective, a list: the Pareto front)")
    p.add_argument("--objective", metavar="METRIC", help="with several objectives: the front's "
                   "member best in METRIC (default: the first objective)")
    p.add_argument("--download", metavar="DIR", help="copy the checkpoint into DIR when it is in "
                   "cloud storage, and print its local path too")
    p.add_argument("--config-out", metavar="FILE", help="write the best trial as a config the "
                   "project's own script runs: for a Hydra project, an experiment config "
                   "(experiment=NAME when FILE is in configs/experiment/); else a LightningCLI "
                   "config (the sweep's base config with the trial's values); ckpt_path as a "
                   "comment")
    p.add_argument("--overrides", action="store_true", help="print the best trial as Hydra "
                   "override strings (model.optimizer.lr=0.01 data.batch_size=64 ...)")

    p = sub.add_parser("report", help="write an HTML report with pictures of an experiment",
                       description="Write a self-contained report (index.html and PNGs): the "
                       "best trial, the cost, learning curves with where ASHA stopped each "
                       "trial, parallel coordinates, parameter importances, the leaderboard.")
    p.add_argument("experiment", help=EXPERIMENT_HELP)
    p.add_argument("--out", metavar="DIR", help="the report's directory (default: "
                   "EXPERIMENT/report, or ./report-NAME for a cloud experiment)")

    p = _job_parser(sub, "slurm", "write (and submit) a SLURM batch job that runs a sweep",
                    "Write an sbatch script that starts Ray on the allocation and runs the sweep "
                    "with --if-exists resume, asking for --requeue and a SIGTERM ahead of the "
                    "time limit: a requeued job continues the sweep.")
    p.add_argument("--nodes", type=_positive_int, default=1, help="nodes (default 1)")
    p.add_argument("--cpus-per-node", type=_positive_int, help="CPUs for Ray on each node")
    p.add_argument("--gpus-per-node", type=int, default=0, help="GPUs on each node (default 0)")
    p.add_argument("--time", help="SLURM's time limit (HH:MM:SS); the sweep saves itself 2 "
                   "minutes before it and the job requeues")
    p.add_argument("--partition", help="SLURM partition")
    p.add_argument("--script-out", metavar="FILE", help="the script's path (default: "
                   "lightsweep-NAME.sbatch); an existing file is never overwritten")
    p.add_argument("--submit", action="store_true", help="submit it with sbatch; prints the "
                   "job's id last")

    p = _job_parser(sub, "k8s", "write a KubeRay RayJob that runs a sweep",
                    "Write a Secret (the cluster's token) and a KubeRay RayJob (ray.io/v1) whose "
                    "entrypoint runs the sweep with --if-exists resume; KubeRay reruns it on a "
                    "new cluster after a head loss (backoffLimit).")
    p.add_argument("--image", default=RayJobManifest.image, help="every pod's image, with "
                   f"Ray and lightsweep's stack (default {RayJobManifest.image})")
    p.add_argument("--workers", type=_positive_int, default=1, help="worker pods (default 1)")
    p.add_argument("--cpus-per-worker", type=_positive_int, default=4)
    p.add_argument("--gpus-per-worker", type=int, default=0)
    p.add_argument("--storage", required=True, help="where experiments go: a cloud URI "
                   f"(s3://bucket/runs), or {STORAGE_MOUNT}/runs with --volume-claim")
    p.add_argument("--volume-claim", metavar="CLAIM", help="a PersistentVolumeClaim every pod "
                   f"mounts at {STORAGE_MOUNT}")
    p.add_argument("--working-dir", metavar="URI", help="the project as a zip in cloud "
                   "storage (runtimeEnvYAML working_dir); default: the image holds it")
    p.add_argument("--out", metavar="FILE", help="the manifests' path (default: "
                   "lightsweep-NAME.yaml); an existing file is never overwritten")

    p = sub.add_parser("validate", help="check a sweep file without running it",
                       description="Check a sweep file, its classes and arguments, and this "
                       "machine's hardware; starts no Ray process.")
    p.add_argument("sweep", nargs="?", help="sweep file (none with --hydra)")
    p.add_argument("--config", action="append", metavar="FILE", help=CONFIG_HELP)
    p.add_argument("--hydra", nargs="+", metavar=("CONFIG", "OVERRIDE"), help=HYDRA_HELP)
    p.add_argument("--metric", help="the metric to optimize (metric)")
    p.add_argument("--mode", choices=("max", "min"), help="whether larger --metric is better")
    p.add_argument("--address", help="check for the Ray cluster at this address (default: "
                   "$RAY_ADDRESS, else this machine): its hardware is not checked, relative "
                   "paths its nodes will not have are")
    return parser


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _bytes(size: int) -> str:
    if size < 1000:
        return f"{size}B"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1000
        if value < 1000 or unit == "GB":
            break
    return f"{value:.1f}{unit}"


def _columns(ledger: Ledger) -> list[str]:
    return ledger.spec.shown_metrics if ledger.pareto else [ledger.spec.metric]


def _leaderboard_table(rows: list[dict[str, Any]], metrics: list[str]) -> str:
    """Rows of :meth:`Ledger.rows` with a column per metric of ``metrics``."""
    # What each trial ran (the precision Lightning used), when its workers said.
    ran = any(row.get("ran") for row in rows)
    # Ranked by Pareto front: each objective's value at the trial's last scored epoch.
    pareto = any("front" in row for row in rows)
    # Which run added each trial, once the sweep was extended (resume --num-samples).
    extended = any(row.get("added_by") for row in rows)
    header = ["rank", *(["front"] if pareto else []), "trial", "status", "epochs", *metrics,
              "worker-s", "checkpoints", *(["ran"] if ran else []),
              *(["added by"] if extended else []), "config"]
    lines = [header]
    for rank, row in enumerate(rows, 1):
        if pareto:
            values = [metric_text((row["values"] or {}).get(m)) for m in metrics]
            front = ["-" if row["front"] is None else str(row["front"])]
        else:
            values, front = [metric_text(row["value"])], []
        config = " ".join(f"{k}={_fmt(v)}" for k, v in row["config"].items())
        if row["error"]:
            config += f"  [{row['error']}]"
        kept = f"{row['checkpoints']} ({_bytes(row['checkpoint_bytes'])})"
        precision = [row.get("ran", {}).get("precision", "-")] if ran else []
        added = [f"extension {row['added_by']}" if row["added_by"] else "launch"] if extended else []
        status = f"{row['status']} ({row['stopped_by']})" if row.get("stopped_by") else row["status"]
        lines.append([str(rank), *front, row["trial_id"], status, str(row["epochs"]),
                      *values, f"{row['worker_seconds']:.1f}", kept, *precision, *added, config])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line[:-1], widths, strict=True)) + "  " + line[-1]
        for line in lines
    )


def _show_leaderboard(experiment: str, as_json: bool) -> None:
    ledger = Ledger.load(experiment)
    if as_json:
        sys.stdout.write(json.dumps(ledger.rows(), indent=2) + "\n")
    else:
        sys.stdout.write(_leaderboard_table(ledger.rows(), _columns(ledger)) + "\n")
        sys.stdout.write(_cost_line(ledger) + "\n")


def _show_front(experiment: str, as_json: bool) -> bool:
    """Prints the Pareto front of a sweep ranked by it; False for a single-metric sweep."""
    ledger = Ledger.load(experiment)
    if not ledger.pareto:
        return False
    front = [b.to_dict() for b in pareto_front(ledger)]
    if as_json:
        sys.stdout.write(json.dumps(front, indent=2) + "\n")
        return True
    metrics = ledger.spec.shown_metrics
    lines = [f"Pareto front ({len(front)} trials): "
             + ", ".join(f"{o.metric} ({o.mode})" for o in ledger.spec.objective_list)]
    for member in front:
        values = " ".join(f"{m}={metric_text(member['values'].get(m))}" for m in metrics)
        lines.append(f"  {member['trial_id']}: {values} at epoch {member['epoch']}")
    sys.stdout.write("\n".join(lines) + "\n")
    return True


def _show_best(experiment: str, as_json: bool, download: str | None = None,
               config_out: str | None = None, objective: str | None = None) -> None:
    front_only = objective is None and not (download or config_out)
    if front_only and _show_front(experiment, as_json) and as_json:
        return  # several objectives, --json: the front is the answer
    found = fetch_best(experiment, objective)
    best = found.to_dict()
    if config_out:
        best["config_out"] = str(found.write_config(config_out))
        best["config_form"] = found.config_form()
    if download:
        best["local_checkpoint"] = str(found.download_checkpoint(download))
    if as_json:
        sys.stdout.write(json.dumps(best, indent=2) + "\n")
        return
    lines = [f"best trial {best['trial_id']}: {best['metric']}={metric_text(best['value'])} at "
             f"epoch {best['epoch']}"]
    lines += [f"  {k}: {metric_text(v)}" for k, v in best.get("values", {}).items() if k != best["metric"]]
    lines += [f"  {k} = {_fmt(v)}" for k, v in best["config"].items()]
    lines.append(f"  checkpoint: {best['checkpoint']}")
    if download:
        lines.append(f"  downloaded: {best['local_checkpoint']}")
    if config_out and best["config_form"] == "hydra":
        lines.append(f"  Hydra experiment config: {best['config_out']} "
                     f"(experiment={Path(best['config_out']).stem})")
    elif config_out:
        lines.append(f"  LightningCLI config: {best['config_out']}")
    sys.stdout.write("\n".join(lines) + "\n")


def _cost_line(ledger: Ledger) -> str:
    cost = ledger.cost()
    spec = ledger.spec
    everything = cost.worker_seconds + cost.worker_seconds_saved
    share = f", {cost.worker_seconds_saved / everything:.0%}" if everything else ""
    line = (f"cost: {cost.epochs} epochs, {cost.worker_seconds:.1f} worker-s; early stopping "
            f"saved {cost.epochs_saved} epochs, ~{cost.worker_seconds_saved:.1f} worker-s{share} "
            f"(against {len(ledger.trials)} trials x {spec.scheduler.max_epochs} epochs)")
    budget = budget_line(spec, ledger.trials.values())
    return f"{line}\n{budget}" if budget else line


def _failures(ledger: Ledger, path: Location) -> tuple[str | None, bool]:
    """How many of a sweep's trials failed, and the first one's error, with where its whole
    traceback is; and whether some died (their process or node, more often than
    ``failures.max_retries`` allows) rather than raised in the user's code."""
    failed = [t for t in ledger.trials.values() if t.status == "errored"]
    if not failed:
        return None, False
    died = [t for t in failed if not (trial_path(path, t.trial_id) / USER_ERROR_FILE).exists()]
    first = failed[0]
    where = trial_path(path, first.trial_id) / "error.txt"
    said = (f"{len(failed)} of {len(ledger.trials)} trials failed; the first, trial "
            f"{first.trial_id}: {first.error or 'unknown error'} (its traceback: {where})")
    if died:
        said += (f". {len(died)} of them died (their process or node) more often than "
                 f"failures.max_retries ({ledger.spec.failures.max_retries}) allows. Fix: "
                 "give trials more retries (--max-retries) in a new sweep, with --warm-start "
                 f"{path} to begin from what these learned")
    else:
        said += ". Each raised in your code (a retry would raise again)"
    return said, bool(died)


def _summarize(outcome: SweepOutcome) -> int:
    path = outcome.path
    ledger = Ledger.load(path)
    rows = ledger.rows()
    sys.stdout.write(_leaderboard_table(rows, _columns(ledger)) + "\n")
    sys.stdout.write(
        f"\nexperiment: {path} (checkpoints: {sum(r['checkpoints'] for r in rows)} kept, "
        f"{_bytes(sum(r['checkpoint_bytes'] for r in rows))})\n"
    )
    sys.stdout.write(_cost_line(ledger) + "\n")
    failed, died = _failures(ledger, path)
    code = 1 if died else 0
    try:
        _show_best(str(path), as_json=False)
        sys.stdout.write(f"  lightsweep best {path} --json\n")
        if failed:
            logger.warning("%s", failed)
    except SweepError as exc:  # the sweep ran, but no trial got as far as a result
        logger.error("no best trial: %s", failed or exc)
        code = 1
    spent = budget_spent(ledger.spec, ledger.trials.values())
    if outcome.unfinished and spent:
        logger.info("the budget is spent: %d of the sweep's trials did not run. Run them with a "
                    "larger one: lightsweep resume %s --budget-worker-hours H (or "
                    "--budget-wall-hours H)", outcome.unfinished, path)
    elif outcome.unfinished:
        logger.warning(
            "%d of the sweep's trials did not finish. Resume with: lightsweep resume %s",
            outcome.unfinished, path,
        )
        code = 1
    return code


def _run(args: argparse.Namespace) -> int:
    if args.command in ("launch", "resume"):
        if args.verbose:
            os.environ[VERBOSE_ENV] = "1"  # this process's, and the sweep's processes'
        # First, before Ray Train and Tune are imported: the versions they run with.
        warn_untested_versions()
        from tuning.driver.sweep import launch, resume
    if args.command == "launch":
        return _summarize(launch(
            _sweep_file(args), num_samples=args.num_samples, max_epochs=args.max_epochs,
            workers_per_trial=args.workers_per_trial, max_concurrent=args.max_concurrent,
            trial_runner=args.trial_runner,
            max_retries=args.max_retries, fail_fast=args.fail_fast, seed=args.seed,
            storage=args.storage, name=args.name, address=args.address,
            warm_start=args.warm_start, wandb=args.wandb, wandb_project=args.wandb_project,
            smoke=args.smoke, config=args.config, hydra=_hydra(args.hydra),
            metric=args.metric, mode=args.mode, if_exists=args.if_exists,
            stock_ray=args.stock_ray, budget_worker_hours=args.budget_worker_hours,
            budget_wall_hours=args.budget_wall_hours,
        ))
    if args.command == "resume":
        return _summarize(resume(args.experiment, address=args.address,
                                 stock_ray=args.stock_ray, num_samples=args.num_samples,
                                 max_epochs=args.max_epochs, top=args.top, trials=args.trials,
                                 budget_worker_hours=args.budget_worker_hours,
                                 budget_wall_hours=args.budget_wall_hours, sweep=args.sweep))
    if args.command == "leaderboard":
        _show_leaderboard(args.experiment, args.json)
    elif args.command == "best":
        if args.overrides:
            sys.stdout.write(" ".join(fetch_best(args.experiment, args.objective)
                                      .hydra_overrides()) + "\n")
            return 0
        _show_best(args.experiment, args.json, args.download, args.config_out, args.objective)
    elif args.command == "report":
        from tuning.read.report import write_report  # matplotlib: only for this command

        sys.stdout.write(f"{write_report(args.experiment, args.out)}\n")
    elif args.command == "validate":
        if args.sweep is None and not args.hydra:
            raise SweepError("validate: nothing to check. Fix: give a sweep file, or --hydra "
                             "CONFIG [OVERRIDE ...]")
        spec = load_spec(_sweep_file(args), {"config": args.config, "hydra": _hydra(args.hydra),
                                             "metric": args.metric, "mode": args.mode})
        address = args.address or os.environ.get("RAY_ADDRESS")
        for warning in check_launch(spec, local=address is None):
            logger.warning("%s", warning)
        space = spec.search_space
        shown = [spec.shown_keys.get(k, k) for k in space.searched]
        checked = args.sweep or args.hydra[0]
        sys.stdout.write(
            f"{checked}: ok ({len(shown)} searched: {', '.join(shown)}; "
            f"{spec.search.num_samples} trials of at most {spec.scheduler.max_epochs} epochs)\n"
        )
    return 0


def _job_files(args: argparse.Namespace, forwarded: list[str]) -> int:
    """``slurm`` and ``k8s``: the job file for a sweep, ``forwarded`` being launch's flags."""
    launch_args = [*([args.sweep] if args.sweep else []), *forwarded]
    taken = {"--name", "--if-exists", *(["--storage"] if args.command == "k8s" else [])}
    given = [a.split("=")[0] for a in forwarded if a.split("=")[0] in taken]
    if given:
        own = f" (give it to {args.command})" if given[0] == "--name" else ""
        raise SweepError(f"{given[0]}: {args.command} sets it for every run of the job. Fix: "
                         f"leave it out of launch's flags{own}")
    try:  # launch's own parser: a mistake is said now, not on the cluster
        launched = _parser().parse_args(["launch", *launch_args])
    except SystemExit as exit_:
        return int(exit_.code or 2)
    if launched.sweep is None and not launched.hydra:
        raise SweepError(f"{args.command}: no sweep. Fix: give a sweep file, or --hydra CONFIG")
    stem = Path(launched.sweep or launched.hydra[0]).stem
    name = args.name or f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    if args.command == "slurm":
        job = SlurmJob(name=name, launch_args=launch_args, nodes=args.nodes,
                       cpus_per_node=args.cpus_per_node, gpus_per_node=args.gpus_per_node,
                       time=args.time, partition=args.partition)
        out, text = Path(args.script_out or f"lightsweep-{name}.sbatch"), job.script()
    else:
        manifest = RayJobManifest(
            name=name, launch_args=launch_args, storage=args.storage, image=args.image,
            workers=args.workers, cpus_per_worker=args.cpus_per_worker,
            gpus_per_worker=args.gpus_per_worker, volume_claim=args.volume_claim,
            working_dir=args.working_dir)
        out, text = Path(args.out or f"lightsweep-{name}.yaml"), manifest.yaml()
    if out.exists():
        raise SweepError(f"{out} exists and is not overwritten. Fix: name another file, or "
                         "remove it first")
    atomic_write_text(out, text)
    sys.stdout.write(f"{out}: experiment {name}\n")
    if args.command == "slurm" and args.submit:
        sys.stdout.write(f"{submit(out)}\n")
    elif args.command == "k8s":
        sys.stdout.write(f"  kubectl apply -f {out}\n")
    return 0


def _sweep_file(args: argparse.Namespace) -> str | None:
    """The sweep file named, else none beside ``--hydra``, else the default sweep."""
    if args.sweep is not None or args.hydra:
        return str(args.sweep) if args.sweep is not None else None
    return DEFAULT_SWEEP if args.command == "launch" else None


def _hydra(given: list[str] | None) -> dict[str, Any] | None:
    """``--hydra CONFIG OVERRIDE ...`` as :func:`tuning.config.spec.load_spec` takes it."""
    return {"config": given[0], "overrides": given[1:]} if given else None


def _mistyped_command(argv: list[str]) -> str | None:
    """The command ``argv[0]`` was probably meant to be, when it is no command, no option and
    no sweep file (``launch``'s default position), but close to a command's name."""
    if not argv or argv[0] in COMMANDS or argv[0].startswith("-"):
        return None
    word = argv[0]
    if Path(word).exists() or Path(word).suffix or "/" in word:
        return None  # a sweep file for launch, the default command
    close = difflib.get_close_matches(word, COMMANDS, n=1, cutoff=0.6)
    return close[0] if close else None


def _shutdown_ray() -> None:
    # Only where this process started or joined one: the readers never import Ray.
    if "ray" in sys.modules:
        import ray

        ray.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code (2 for bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    mistyped = _mistyped_command(argv)
    if mistyped:
        sys.stderr.write(f"lightsweep: error: unknown command {argv[0]!r}. Fix: did you mean "
                         f"{mistyped!r}? Commands: {', '.join(COMMANDS)}\n")
        return 2
    if not argv or argv[0] not in (*COMMANDS, "-h", "--help"):
        argv = ["launch", *argv]  # launch is the default command
    forwarded: list[str] = []
    if argv and argv[0] in PLATFORM_COMMANDS:
        args, forwarded = _parser().parse_known_args(argv)
    else:
        args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        if args.command in PLATFORM_COMMANDS:
            return _job_files(args, forwarded)
        return _run(args)
    except SweepError as exc:
        logger.error("error: %s", exc)
        return 2
    except PreemptedError as exc:
        _shutdown_ray()
        logger.warning("%s", exc)
        return REQUEUE_EXIT
    except StorageFullError as exc:
        # Ray streams its workers' last words (the failed upload's traceback) to this console
        # until it is shut down: shut it first, so that the fix is the last thing said.
        _shutdown_ray()
        logger.error("error: %s", exc)
        return 1
