"""Running a sweep: Ray, the Tuner, its searcher (Optuna TPE), scheduler (ASHA) and callbacks.

:func:`launch` starts a new experiment; :func:`resume` finishes one whose driver died or was
interrupted.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import optuna
import ray
from optuna.trial import FrozenTrial
from ray import tune
from ray.tune.error import TuneError
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from tuning._internals import asha as asha_layer
from tuning._internals import optuna_search as optuna_layer
from tuning._internals import pbt as pbt_layer
from tuning._internals.asha import record_earlier
from tuning._internals.autoscaler import AUTOSCALER_REQUESTS_ENV
from tuning._internals.head_node import head_resources
from tuning._internals.logs import verbose
from tuning._internals.placement_groups import PLACEMENT_GROUPS_ENV
from tuning._internals.probe import OFF_ENV, STOCK_RAY_ENV, enabled, forget, probe_all
from tuning._internals.probe import stock_ray as stock_ray_on
from tuning._internals.tune_env import passed_to_trials
from tuning.config.checks import Hardware, check_hardware, max_concurrent_trials
from tuning.config.seeding import trial_seed
from tuning.config.shipping import SHIPPING_EXCLUDES
from tuning.config.space import sample
from tuning.config.spec import ResourcesConfig, SweepSpec, load_spec
from tuning.contracts import CONTINUES_KEY, SEED_KEY
from tuning.driver.budget import (
    BudgetGate,
    BudgetSearcher,
    BudgetStopper,
    start_meter,
    stopped_by,
)
from tuning.driver.class_check import ClassCheck
from tuning.driver.extension import (
    OUTSIDE_ATTR,
    Extension,
    check_changed_sweep,
    more_trials,
    refit,
    trials_to_train_longer,
)
from tuning.driver.imports import import_tensorboardx_without_torch
from tuning.driver.lease import HEARTBEAT_S, DriverLease, stale_after_s
from tuning.driver.pareto_asha import ParetoASHA
from tuning.driver.pbt import TrainRunPBT
from tuning.driver.placement_groups import (
    driver_removes_placement_groups,
    removing_dead_trials_placement_groups,
)
from tuning.driver.progress import progress_callback, stop_live_displays
from tuning.driver.searcher import TruthfulOptunaSearch
from tuning.driver.storage import check_shared_storage, check_writable
from tuning.driver.tune_state import (
    TuneStateBackup,
    continue_searcher,
    match_saved_search,
    restore_whole_state,
    searcher_state_saved,
)
from tuning.driver.versions import warn_untested_versions
from tuning.driver.warm_start import past_trials
from tuning.errors import (
    PreemptedError,
    StorageFullError,
    SweepError,
    is_storage_full,
    is_unauthenticated,
)
from tuning.record import FINISHED, Ledger, LedgerCallback, TrialRecord
from tuning.record.budget import budget_line, budget_spent
from tuning.record.layout import trial_dirname
from tuning.record.location import Location
from tuning.record.study_file import StudyFile, upload_pending
from tuning.trial.driver import run_trial
from tuning.trial.ray_logs import drop_expected_messages
from tuning.trial.tracking import wandb_mode
from tuning.trial.warm_pool import WarmPool

logger = logging.getLogger(__name__)

# A trial's driver only waits on its Train run: it holds no CPU or GPU that a worker may need
# (else trials' drivers can starve their own worker groups). It reserves the memory it uses,
# which also gives Tune the non-empty resource request it insists on, and it runs on the head
# node (tuning._internals.head_node), so that losing any other node costs workers (which are
# retried), never a driver.
TRIAL_DRIVER_RESOURCES: dict[str, float] = {"CPU": 0, "memory": 256 * 1024**2}


@dataclass(frozen=True)
class SweepOutcome:
    """How a sweep run ended.

    Attributes:
        path: The experiment directory (or cloud URI).
        finished: Trials that completed or were stopped early by the scheduler.
        errored: Trials that failed.
        unfinished: Trials not run to an end (the sweep was interrupted or failed fast).
    """

    path: Location
    finished: int
    errored: int
    unfinished: int


def experiment_dir(spec: SweepSpec, name: str | None, sweep_stem: str,
                   exists_ok: bool = False) -> Location:
    """``<storage>/<name>``, the name defaulting to the sweep's plus a timestamp.

    Raises:
        SweepError: If that experiment exists (it is never overwritten; ``exists_ok``: one
            that holds nothing to resume is started in), or the storage cannot be read.
    """
    name = name or spec.name or f"{sweep_stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = Location.parse(spec.storage) / name
    try:
        exists = path.exists()
    except OSError as error:  # no such bucket, no credentials
        raise SweepError(
            f"storage: cannot read {spec.storage} ({error}). Fix: check the URI and the "
            "credentials for it (AWS_* variables, an instance profile, "
            "GOOGLE_APPLICATION_CREDENTIALS)"
        ) from error
    if exists and not exists_ok:
        raise SweepError(
            f"--name: experiment {path} exists and is never overwritten. Fix: pick another --name, "
            f"or continue it with: lightsweep resume {path}"
        )
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Environment the trials need, forwarded to every worker (W&B settings, lightsweep's own, Ray
# Train's settings).
FORWARDED_ENV_PREFIXES = ("WANDB_", "LIGHTSWEEP_", "RAY_TRAIN_", "TUNE_FUNCTION_THREAD_TIMEOUT_S")
# Ray Train's settings for trials, unless the environment sets them. Train's controller takes a
# worker's report only when it polls, every 2 s by default, and a report waits for the one
# before it to be taken: short epochs waited for the poll. bench/ measured the median gap
# between epochs at 0.108 s with 2 s, 0.042 s with 0.2 s; a missed poll is only waited on
# longer (a worker is declared hung after RAY_TRAIN_WORKER_HEALTH_CHECK_TIMEOUT_S, 10 min).
TRAIN_ENV_DEFAULTS = {
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2",
    # A reused trial process waits this long for the stopped trial's function to end before it
    # takes the next trial (Tune's default, 2 s, fails the next trial when a Train run's
    # workers take longer to go on a busy machine).
    "TUNE_FUNCTION_THREAD_TIMEOUT_S": "30",
}
# On a local Ray, no node is ever drained for preemption, so Train's PreemptionWatcher (one more
# actor, a process of its own, per trial) has nothing to watch, and no autoscaler takes Train's
# resource requests (through a coordinator actor: tuning._internals.autoscaler);
# on a cluster both stay on.
LOCAL_TRAIN_ENV_DEFAULTS = {"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
                            AUTOSCALER_REQUESTS_ENV: "0"}
SHIPPED_PACKAGES = ("tuning", "lightning_modules")


def _package_dir(name: str) -> Path:
    found = importlib.util.find_spec(name)
    if found is None or not found.submodule_search_locations:
        raise SweepError(f"cannot ship the package {name} to the cluster: it is not importable "
                         "here. Fix: pip install -e . in lightsweep's checkout")
    return Path(next(iter(found.submodule_search_locations)))


def runtime_env(address: str | None) -> dict[str, Any]:
    """What every Ray worker of the sweep gets: the code, and the environment trials need.

    On a local Ray, workers share this file system: they import the user's modules from the
    launch directory, as the driver does. On a cluster, the launch directory (the user's
    modules) and lightsweep's own packages are shipped to every node, so that a node needs only
    the pinned dependencies installed.
    """
    env_vars = {**TRAIN_ENV_DEFAULTS, **(LOCAL_TRAIN_ENV_DEFAULTS if address is None else {}),
                **{k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}}
    if driver_removes_placement_groups(address):
        env_vars[PLACEMENT_GROUPS_ENV] = "driver"
    cwd = Path.cwd()
    hook = f"{drop_expected_messages.__module__}.{drop_expected_messages.__name__}"
    # A trial's code runs in the directory its relative paths were written for: the launch
    # directory on a local Ray (tuning.trial.worker.run_in_launch_directory), the shipped one on
    # a cluster, never Tune's trial directory.
    env_vars["RAY_CHDIR_TO_TRIAL_DIR"] = "0"
    if address is None:
        paths = [str(cwd), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        env_vars["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        return {"env_vars": env_vars, "worker_process_setup_hook": hook}
    env: dict[str, Any] = {"working_dir": str(cwd), "excludes": SHIPPING_EXCLUDES,
                           "env_vars": env_vars, "worker_process_setup_hook": hook}
    # Found, not imported: lightning_modules' __init__ imports Lightning (8 s and 0.4 GB that
    # the driver would keep to the sweep's end).
    packages = [_package_dir(name) for name in SHIPPED_PACKAGES]
    outside = [str(p) for p in packages if not p.is_relative_to(cwd)]  # else the working dir has it
    if outside:
        env["py_modules"] = outside
    return env


def native_precisions(spec: SweepSpec, emulated: list[str], slowdown: float) -> SweepSpec:
    """``spec`` without the precisions its ``resources.native_precisions`` leaves out because
    this machine's CPU emulates them (:func:`tuning.config.checks.emulated_precisions`), said in
    one line; as it is where none is emulated, or none would be left."""
    if not emulated:
        return spec
    kept = [p for p in spec.space["trainer.precision"]["choice"] if p not in emulated]
    if not kept:
        logger.warning("trainer.precision: this machine's CPU runs %s %.0fx slower than 32-true "
                       "(no native bfloat16), and the sweep searches nothing else: searched as "
                       "it is", " and ".join(emulated), slowdown)
        return spec
    logger.info("trainer.precision: this machine's CPU runs %s %.0fx slower than 32-true (no "
                "native bfloat16), so the sweep searches %s (resources.native_precisions)",
                " and ".join(emulated), slowdown, ", ".join(kept))
    return spec.without_precisions(emulated)


def probe_layers(stock: bool = False) -> list[str]:
    """Says which tested ranges the installed packages are outside of, then probes every layer
    over a private part (one warning for each that is off) and tells the sweep's processes which
    are off; returns their names. ``stock``: every trial through Ray's documented paths only."""
    warn_untested_versions()
    if stock:
        os.environ[STOCK_RAY_ENV] = "1"
    os.environ.pop(OFF_ENV, None)
    forget()
    off = probe_all()
    os.environ[OFF_ENV] = ",".join(off)
    if stock_ray_on():
        logger.info("stock Ray: every trial runs through Ray's documented paths only")
    return off


def quiet_console() -> None:
    """Keeps the lines other tools print by design off the sweep's console, which shows its own
    progress (all of them with ``launch --verbose``)."""
    if verbose():
        return
    # Tune's configuration box, its results path and a TensorBoard hint into Ray's temporary
    # directory: the sweep says where its experiment is (Tune's legacy output, silent at
    # verbose=0, is its documented switch).
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Optuna's "A new study created in memory" (and again when a resume opens its study file).
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Ray 2.52's tip about a future default of GPU visibility, for a process with no GPU.
    warnings.filterwarnings("ignore", message=r".*RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO")


def init_ray(address: str | None, **init_kwargs: Any) -> None:
    """Joins the Ray cluster at ``address``, or starts a local one; no-op if Ray is running.

    Args:
        address: A Ray cluster's address, or None for an embedded local Ray.
        **init_kwargs: More arguments for ``ray.init`` (``num_cpus`` for a local Ray, say).
    """
    drop_expected_messages()  # in this process too: it runs Tune
    quiet_console()
    env = runtime_env(address)
    if ray.is_initialized():
        _apply_to_running_ray(env)
        return
    if address is None:
        # "local" starts a Ray of our own. Left unset, ray.init would join the cluster that
        # `ray start` last started on this host (even a dead one), not what the user asked for.
        address = "local"
    if address == "local" and init_kwargs.get("include_dashboard") is not False:
        # Ray Train's cleaner removes a stopped trial's placement group through the State API,
        # which finds "the" Ray of this host by itself and gives up when a host runs two (two
        # sweeps on one laptop): the group then leaks and later trials starve. Name our own.
        port = _free_port()
        init_kwargs["dashboard_port"] = port
        env["env_vars"]["RAY_API_SERVER_ADDRESS"] = f"http://127.0.0.1:{port}"
        # This process's own State API calls too: its Ray is this one.
        os.environ["RAY_API_SERVER_ADDRESS"] = env["env_vars"]["RAY_API_SERVER_ADDRESS"]
    try:
        ray.init(address=address, runtime_env=env, logging_level=logging.WARNING, **init_kwargs)
    except (ConnectionError, RuntimeError) as error:
        if not is_unauthenticated(error):
            raise
        raise SweepError(
            f"--address: the Ray cluster at {address} refused this driver: it uses token "
            "authentication (what `ray start` turns on in Ray 2.59+) and no token was given. "
            "Fix: export RAY_AUTH_MODE=token and the cluster's token, as RAY_AUTH_TOKEN=... or in "
            "~/.ray/auth_token (or a file named by RAY_AUTH_TOKEN_PATH); `ray get-auth-token` on "
            "the head node prints it"
        ) from None


def _apply_to_running_ray(wanted: dict[str, Any]) -> None:
    """Ray was initialised before the sweep (a notebook's ``ray.init()``), so its job's runtime
    env stands. Sets here the variables Ray Tune passes on to each trial's process, and warns,
    naming them, of the rest that the job's workers lack."""
    job = dict(ray.get_runtime_context().runtime_env or {})
    job_vars = dict(job.get("env_vars") or {})
    passed_on = passed_to_trials()
    lacking = []
    for name, value in wanted["env_vars"].items():
        if job_vars.get(name) == value:
            continue
        if name in passed_on:
            os.environ.setdefault(name, value)
        else:
            lacking.append(f"{name}={value}")
    lacking += [key for key in ("worker_process_setup_hook", "working_dir", "py_modules")
                if key in wanted and job.get(key) != wanted[key]]
    if lacking:
        logger.warning(
            "Ray was initialised before this sweep, so the sweep's runtime env could not be "
            "given to its workers: they lack %s. Fix: let the sweep start Ray (no ray.init() "
            "before it), or ray.init(runtime_env=tuning.driver.sweep.runtime_env(None))",
            ", ".join(lacking))


def local_ray_options(spec: SweepSpec) -> dict[str, Any]:
    """More ``ray.init`` options for the local Ray a sweep starts: Ray's dashboard only where
    Train trials keep Train's placement-group cleaner, which asks the State API it serves
    whether a run's controller lives (:func:`driver_removes_placement_groups`). Without it Ray
    starts ~2.5 s sooner and holds 0.21 GB less (its ten head modules' processes, measured on
    Ray 2.60)."""
    cleaner = spec.resources.trial_runner == "train" and not driver_removes_placement_groups(None)
    return {} if cleaner else {"include_dashboard": False}


def _connect(spec: SweepSpec, address: str | None, path: Location, check: ClassCheck) -> int:
    """Starts or joins Ray while ``check`` runs, then checks what it found (resources; on a
    cluster or for a cloud URI, that every node reaches the storage); returns how many trials
    may run at once.

    Raises:
        SweepError: The check's, once the Ray this started is stopped again; or the
            resources' or the storage's.
    """
    started = not ray.is_initialized()
    init_ray(address, **(local_ray_options(spec) if address is None else {}))
    if address is None and spec.resources.trial_runner == "train":
        # Now, not once the check is done: the first trials' workers import torch and Lightning
        # while the user's classes are checked (one process) and Tune starts their trials.
        hardware = Hardware.of_cluster(ray.cluster_resources())
        WarmPool.for_spec(spec).before_sweep(max_concurrent_trials(spec, hardware))
    try:
        check.wait()
    except SweepError:
        if started:
            ray.shutdown()
        raise
    # Read after the check: a cluster's nodes may still be joining as this driver connects.
    hardware = Hardware.of_cluster(ray.cluster_resources())
    check_hardware(spec, hardware)
    if address is not None or not path.is_local:
        check_shared_storage(path.parent)
    return max_concurrent_trials(spec, hardware)


def trial_resources(resources: ResourcesConfig) -> dict[str, float]:
    """What Tune reserves for a trial's own process: a Train trial's driver, which holds nothing
    its workers need, or an inline trial, which is its one worker."""
    if resources.trial_runner == "train":
        return {**TRIAL_DRIVER_RESOURCES, **head_resources()}
    return {"CPU": resources.cpus_per_worker,
            **({"GPU": resources.gpus_per_worker} if resources.gpus_per_worker else {})}


def _trainable(spec: SweepSpec, path: Location, local: bool) -> Any:
    trainable = tune.with_parameters(
        run_trial, spec=spec, experiment_path=path.uri,
        # Trials on this machine run their code in the sweep's launch directory.
        local=local,
        # Decided here, where the user's W&B key is (trials may run on other machines).
        wandb_mode=spec.wandb.mode or wandb_mode(),
    )
    return tune.with_resources(trainable, trial_resources(spec.resources))


def build_searcher(
    spec: SweepSpec, warm_start: list[FrozenTrial] | None = None, path: Location | None = None,
) -> OptunaSearch:
    """Optuna's sampler of ``spec`` for its searched space, its study starting with
    ``warm_start``, copied into the experiment ``path`` for optuna-dashboard (Ray's own
    ``OptunaSearch`` where the parts of it lightsweep's searcher needs have moved)."""
    # A warm-started sampler seeded as the earlier sweep's was would replay its random start-up
    # proposals, the same configurations again: seed it apart, reproducibly.
    seed = spec.search.seed
    sampler_seed = trial_seed(seed, len(warm_start)) if warm_start else seed
    sampler: optuna.samplers.BaseSampler
    args = dict(spec.search.sampler_args)
    if spec.search.sampler == "tpe":
        sampler = optuna.samplers.TPESampler(seed=sampler_seed, **args)
    elif spec.search.sampler == "nsga2":
        # Optuna's default generation of 50 would leave a sweep of fewer trials wholly random:
        # a quarter of the sweep per generation gives it four generations to evolve.
        args.setdefault("population_size", min(50, max(4, spec.search.num_samples // 4)))
        sampler = optuna.samplers.NSGAIISampler(seed=sampler_seed, **args)
    else:
        sampler = optuna.samplers.RandomSampler(seed=sampler_seed, **args)
    objectives = spec.objective_list
    multi = len(objectives) > 1
    common: dict[str, Any] = {
        "sampler": sampler,
        # Define-by-run: a conditional choice's branch arguments exist only in its trials.
        "space": functools.partial(sample, spec.search_space),
        "metric": [o.metric for o in objectives] if multi else spec.metric,
        "mode": [o.mode for o in objectives] if multi else spec.mode,
    }
    if not enabled(optuna_layer.LAYER):
        return OptunaSearch(**common)  # Ray's own: the warning said what it lacks
    return TruthfulOptunaSearch(
        max_epochs=spec.scheduler.max_epochs, seed=seed, warm_start=warm_start,
        study_file=StudyFile(path.uri, spec.directions) if path is not None else None,
        constraints=spec.constraint_list, **common)


def build_tuner(
    spec: SweepSpec, path: Location, concurrency: int, warm_start: list[FrozenTrial] | None = None,
    local: bool = True, extension: Extension | None = None,
) -> tune.Tuner:
    """The Tuner for ``spec``, writing to experiment directory ``path``; its Optuna study
    starts with the ``warm_start`` trials; its trials run on this machine (``local``) or on a
    cluster's nodes. An ``extension`` runs the sweep's trials from its ``first`` on, with its
    continued searcher."""
    space = spec.search_space
    searcher: Searcher | None = None
    param_space: dict[str, Any]
    first = extension.first if extension is not None else 0
    continued = extension.continued if extension is not None else ()
    trials = len(continued) if continued else spec.search.num_samples - first
    if space.searched:  # OptunaSearch cannot sample an empty space
        searcher = (extension.searcher if extension is not None
                    else build_searcher(spec, warm_start, path))
        param_space, num_samples = {}, trials
    elif continued:  # each trained on with its own seed (a repeat's only difference)
        param_space, num_samples = {CONTINUES_KEY: tune.grid_search([
            {"trial": t.trial_id, "from_epoch": t.epochs} for t in continued])}, 1
    else:
        # Nothing searched: the trials are repeats that differ in their seed alone.
        seeds = [trial_seed(spec.search.seed, n) for n in range(first, spec.search.num_samples)]
        param_space, num_samples = {SEED_KEY: tune.grid_search(seeds)}, 1
    scheduler: TrialScheduler
    if spec.scheduler.name == "fifo":
        # Every trial runs to max_epochs, which the trial's Trainer itself holds to.
        scheduler = FIFOScheduler()
    elif spec.scheduler.name == "pbt":
        scheduler = TrainRunPBT(spec, path, concurrency)
    elif spec.multi_objective or spec.constraints:
        scheduler = ParetoASHA(
            spec.objective_list, spec.constraint_list, max_epochs=spec.scheduler.max_epochs,
            grace_period=spec.scheduler.grace_period,
            reduction_factor=spec.scheduler.reduction_factor)
    else:
        scheduler = ASHAScheduler(
            # The epoch survives restarts; Tune's training_iteration restarts at 1 after a restore.
            time_attr="epoch",
            max_t=spec.scheduler.max_epochs,
            grace_period=spec.scheduler.grace_period,
            reduction_factor=spec.scheduler.reduction_factor,
        )
        if extension is not None and enabled(asha_layer.LAYER):
            # New trials are ranked against every earlier one at each rung, not alone.
            record_earlier(scheduler, extension.earlier, spec.mode)
    if spec.scheduler.name != "pbt":
        # Always, a budget or not: a resume may give the sweep one (tuning.driver.budget).
        scheduler = BudgetGate(scheduler)
        searcher = BudgetSearcher(searcher) if searcher is not None else None
    return tune.Tuner(
        _trainable(spec, path, local),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=spec.metric,
            mode=spec.mode,
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=num_samples,
            max_concurrent_trials=concurrency,
            trial_dirname_creator=trial_dirname,
            # A trial's process goes on to the next trial: no process to start and no Ray (and,
            # inline, no torch, Lightning and user modules) to import again. A Train trial that
            # Tune stopped ends its run first (tuning._internals.trainer.ReportToTune). Not under
            # PBT, whose moved trials start again in a fresh process by design (see above).
            reuse_actors=spec.scheduler.name != "pbt",
        ),
        run_config=tune.RunConfig(
            name=path.name,
            storage_path=path.parent.uri,
            callbacks=[
                LedgerCallback(path, spec, extension.added_by if extension is not None else 0,
                               stopped_by=stopped_by),
                # Tune writes its state to cloud storage as whole objects, uploaded from a
                # local copy: only a local experiment's state can be cut short by a full disk.
                *([TuneStateBackup(Path(path.uri))] if path.is_local else []),
                progress_callback(spec.metric, spec.mode, spec.scheduler.max_epochs, trials,
                                  tuple(spec.shown_metrics[1:]), spec.shown_keys),
            ],
            # A trial whose own process died (killed, out of memory, its node lost) is restarted
            # by Tune from its last checkpoint; a Train trial retries its dead workers itself
            # (tuning.trial.driver.run_trial). A trial whose user code raised left a note, and
            # Tune's retry of it fails at once (Tune refuses any retry to fail fast).
            failure_config=tune.FailureConfig(
                max_failures=0 if spec.failures.fail_fast else spec.failures.max_retries,
                fail_fast=spec.failures.fail_fast),
            # Inline trials' checkpoints are Tune's to keep (Train runs keep their own, alike).
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=spec.checkpoints.num_to_keep,
                checkpoint_score_attribute=spec.metric, checkpoint_score_order=spec.mode),
            verbose=1 if verbose() else 0,
            stop=BudgetStopper(),
        ),
    )


def _fit(tuner: tune.Tuner, spec: SweepSpec, path: Location, address: str | None) -> None:
    """Runs the Tuner of a sweep of ``spec`` on the Ray at ``address``, held to its budget; a
    full storage device ends it as :class:`StorageFullError`."""
    start_meter(spec, path)
    # Tune suggests reused actors for PBT; a moved trial restarts its Train run in a fresh
    # process here by design (tuning.driver.pbt), so the advice does not apply.
    warnings.filterwarnings("ignore", message="Consider boosting PBT performance")
    import_tensorboardx_without_torch()  # before Tune's logger imports it, and torch with it
    removing = (removing_dead_trials_placement_groups() if driver_removes_placement_groups(address)
                else contextlib.nullcontext())
    noticed = threading.Event()
    try:
        with removing, stopping_on_sigterm() as noticed:
            tuner.fit()
        if noticed.is_set():
            raise PreemptedError(str(path))
    except KeyboardInterrupt:
        if noticed.is_set():  # the notice came before Tune took over Ctrl-C: nothing to save
            raise PreemptedError(str(path)) from None
        raise
    except (TuneError, OSError) as error:
        # Tune wraps what its callbacks raise (the leaderboard's StorageFullError) in a
        # TuneError; its own writes raise OSError.
        if is_storage_full(error):
            raise StorageFullError(str(path)) from error
        raise
    finally:
        stop_live_displays()  # a sweep that ended without Tune's last callback leaves its table
        upload_pending()  # the study file's last trials, batched in the cloud


@contextlib.contextmanager
def stopping_on_sigterm() -> Iterator[threading.Event]:
    """While Ray Tune runs the sweep, a SIGTERM (a platform's notice: SLURM's time limit or
    requeue, Kubernetes' pod deletion) stops it as Ctrl-C does: Tune stops starting trials,
    stops the running ones (each keeps its last epoch's checkpoint) and saves its state. The
    event yielded is set when that happened. Only the main thread receives signals; elsewhere
    nothing changes."""
    noticed = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield noticed
        return

    def on_notice(signum: int, frame: FrameType | None) -> None:
        noticed.set()
        logger.warning("SIGTERM: stopping the sweep and saving its state")
        tunes = signal.getsignal(signal.SIGINT)  # Tune's graceful stop, while it runs
        if callable(tunes) and tunes is not signal.default_int_handler:
            tunes(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_notice)
    try:
        yield noticed
    finally:
        signal.signal(signal.SIGTERM, previous)


def _outcome(path: Location) -> SweepOutcome:
    ledger = Ledger.load(path)
    statuses = [t.status for t in ledger.trials.values()]
    finished = sum(s in FINISHED for s in statuses)
    errored = statuses.count("errored")
    return SweepOutcome(path, finished, errored,
                        max(0, ledger.spec.search.num_samples - finished - errored))


# `launch --smoke`: every part of a sweep runs (trials on Ray Train, reports, checkpoints, ASHA,
# Optuna), on a few batches.
SMOKE: dict[str, Any] = {
    "search.num_samples": 2, "scheduler.max_epochs": 2, "scheduler.grace_period": 1,
    "trainer_args.limit_train_batches": 4, "trainer_args.limit_val_batches": 2,
    "trainer_args.log_every_n_steps": 1,  # else Lightning warns that 4 batches are too few
    "wandb.mode": "disabled",
}


def launch(
    sweep: str | Path | SweepSpec | None,
    *,
    num_samples: int | None = None,
    max_epochs: int | None = None,
    workers_per_trial: int | None = None,
    max_concurrent: int | None = None,
    trial_runner: str | None = None,
    max_retries: int | None = None,
    fail_fast: bool | None = None,
    seed: int | None = None,
    storage: str | None = None,
    name: str | None = None,
    address: str | None = None,
    warm_start: str | Path | None = None,
    wandb: bool | None = None,
    wandb_project: str | None = None,
    smoke: bool = False,
    config: list[str] | None = None,
    hydra: dict[str, Any] | None = None,
    metric: str | None = None,
    mode: str | None = None,
    if_exists: str = "refuse",
    stock_ray: bool = False,
    budget_worker_hours: float | None = None,
    budget_wall_hours: float | None = None,
) -> SweepOutcome:
    """Runs a new sweep to its end (or its interruption).

    Args:
        sweep: A sweep file, an already loaded SweepSpec, or None for a sweep that ``hydra``
            alone describes.
        num_samples: Overrides ``search.num_samples``.
        max_epochs: Overrides ``scheduler.max_epochs``.
        workers_per_trial: Overrides ``resources.workers_per_trial``.
        max_concurrent: Overrides ``resources.max_concurrent``.
        trial_runner: Overrides ``resources.trial_runner`` (``train`` or ``inline``).
        max_retries: Overrides ``failures.max_retries``.
        fail_fast: Overrides ``failures.fail_fast``.
        seed: Overrides ``search.seed``.
        storage: Overrides ``storage`` (where experiments go: a directory or a cloud URI).
        name: The experiment's name; must not exist yet.
        address: A Ray cluster to run on (else ``RAY_ADDRESS``, else an embedded local Ray).
        warm_start: An earlier experiment (directory or URI) of the same space, metric and
            mode, whose ended trials the new Optuna study starts from.
        wandb: Overrides ``wandb.enabled`` (a W&B run per trial).
        wandb_project: Overrides ``wandb.project``, and turns W&B on.
        smoke: A quick end-to-end check of the sweep file before a long run (like Lightning's
            ``fast_dev_run``, through Ray Train and Tune): :data:`SMOKE` overrides the rest.
        config: LightningCLI config files laid over the sweep file's ``config:`` (later files
            win), relative to the working directory.
        hydra: A Hydra project's ``{"config": primary config, "overrides": [...]}`` as the
            sweep's base (:mod:`tuning.config.hydra_project`), relative to the working directory.
        metric: Overrides ``metric`` (a Hydra config's ``optimized_metric``).
        mode: Overrides ``mode`` (a Hydra sweeper's ``direction``).
        if_exists: What to do when the experiment ``name`` exists: ``refuse`` (exit 2), or
            ``resume`` it (a finished one is left as it is): the same command, rerun by a
            platform after any death, continues the sweep.
        stock_ray: Run every trial through Ray's documented paths only
            (:mod:`tuning._internals.probe`); also ``LIGHTSWEEP_STOCK_RAY=1``.
        budget_worker_hours: Overrides ``budget.worker_hours`` (:mod:`tuning.driver.budget`).
        budget_wall_hours: Overrides ``budget.wall_hours``.

    Raises:
        SweepError: For any invalid input, before any trial starts (a Ray started for the
            sweep is stopped again).
        StorageFullError: If the storage device filled up; the sweep stopped and can be resumed.
    """
    probe_layers(stock_ray)
    overrides = {
        "search.num_samples": num_samples, "scheduler.max_epochs": max_epochs,
        "resources.workers_per_trial": workers_per_trial,
        "resources.max_concurrent": max_concurrent, "resources.trial_runner": trial_runner,
        "failures.max_retries": max_retries,
        "failures.fail_fast": fail_fast, "search.seed": seed, "storage": storage,
        "wandb.enabled": True if wandb_project else wandb, "wandb.project": wandb_project,
        "metric": metric, "mode": mode,
        "budget.worker_hours": budget_worker_hours, "budget.wall_hours": budget_wall_hours,
        # What the trials' relative paths (and a Hydra project's root) are relative to.
        "launch_dir": str(Path.cwd()),
        **(SMOKE if smoke else {}),
    }
    if isinstance(sweep, SweepSpec):
        if config or hydra:
            raise SweepError("--config, --hydra: a base config is read with a sweep file. Fix: "
                             "pass the sweep file's path, or put it in the SweepSpec")
        spec, stem = sweep.with_overrides(overrides), sweep.name or "sweep"
    else:
        spec = load_spec(sweep, {**overrides, "config": config, "hydra": hydra})
        stem = Path(sweep).stem if sweep is not None else Path(str(hydra and hydra["config"])).stem
    if smoke:
        stem = f"smoke-{stem}"
    if spec.scheduler.name == "pbt" and not enabled(pbt_layer.LAYER):
        raise SweepError("scheduler.type: pbt needs parts of Ray Tune's PBT that the installed "
                         "Ray lacks (see the warning above). Fix: scheduler.type: asha, or the "
                         "Ray of constraints.txt")
    address = address or os.environ.get("RAY_ADDRESS")
    fresh_in_existing = False
    if if_exists == "resume" and name is not None:
        existing = Location.parse(spec.storage) / name
        if existing.exists():
            if _has_something_to_resume(existing):
                return resume(existing, address=address, wait_for_lease=True)
            # Died before it recorded anything (while Ray started, say): start it there.
            fresh_in_existing = True
    with contextlib.ExitStack() as stack:
        with ClassCheck(spec, local=address is None) as check:
            past = past_trials(warm_start, spec) if warm_start is not None else None
            path = experiment_dir(spec, name, stem, exists_ok=fresh_in_existing)
            check_writable(path.parent)
            stack.enter_context(DriverLease(path, wait_s=stale_after_s() + HEARTBEAT_S
                                            if fresh_in_existing else 0.0))
            concurrency = _connect(spec, address, path, check)
            spec = native_precisions(spec, *check.emulated)
        return _run_new(spec, stem, path, concurrency, past, warm_start, address)
    raise AssertionError("unreachable")  # ExitStack does not swallow exceptions


def _has_something_to_resume(path: Location) -> bool:
    """Whether the experiment at ``path`` holds a sweep to continue: Tune's saved state, or a
    record of trials (``resume`` then says what it lacks)."""
    if tune.Tuner.can_restore(path.uri):
        return True
    try:
        return bool(Ledger.load(path).trials)
    except SweepError:  # no record yet
        return False


def _run_new(spec: SweepSpec, stem: str, path: Location, concurrency: int,
             past: list[FrozenTrial] | None, warm_start: str | Path | None,
             address: str | None) -> SweepOutcome:
    logger.info(
        "sweep %s: %d trials, at most %d epochs each, %d at a time, %d worker(s) per trial -> %s",
        stem, spec.search.num_samples, spec.scheduler.max_epochs, concurrency,
        spec.resources.workers_per_trial, path,
    )
    if past is not None:
        logger.info("warm start: the study begins with %d trials of %s", len(past), warm_start)
    if spec.scheduler.name == "pbt" and concurrency < spec.search.num_samples:
        logger.warning(
            "population-based training compares trials that train at the same time, and %d of "
            "the %d trials fit at once: the others wait, and a paused trial restarts its Train "
            "run. Fix: lower search.num_samples to %d, or give each trial less "
            "(resources.cpus_per_worker)", concurrency, spec.search.num_samples, concurrency)
    _fit(build_tuner(spec, path, concurrency, past, local=address is None), spec, path, address)
    return _outcome(path)


def resume(experiment: str | Location, *, address: str | None = None,
           wait_for_lease: bool = False, stock_ray: bool = False,
           num_samples: int | None = None, max_epochs: int | None = None,
           top: int | None = None, trials: list[str] | None = None,
           budget_worker_hours: float | None = None,
           budget_wall_hours: float | None = None,
           sweep: str | Path | None = None) -> SweepOutcome:
    """Finishes an interrupted sweep: finished trials are kept, in-flight ones continue from
    their last checkpoint, the searcher's state is restored, and new trials are proposed until
    the sweep has its requested number. A finished sweep is left as it is, unless asked to
    grow (:mod:`tuning.driver.extension`): then, once the sweep as it was is finished, a new
    run in the same experiment, with the same Optuna study (every earlier trial in it), runs
    ``num_samples`` less the sweep's trials more, or trains trials on to ``max_epochs``.

    Args:
        experiment: The experiment directory, or its cloud URI.
        address: A Ray cluster to run on (else ``RAY_ADDRESS``, else an embedded local Ray).
        wait_for_lease: Wait for a driver on another host, whose heartbeat stopped, to go
            stale (a platform's rerun after its host was lost), instead of refusing at once.
        stock_ray: Run every trial through Ray's documented paths only.
        num_samples: The sweep's trials in all, earlier ones included (``search.num_samples``
            raised); None or the sweep's own: no more.
        max_epochs: Train trials on to this many epochs from their last checkpoints: the
            ``top`` best (default: every one) of those that ran the sweep's
            ``scheduler.max_epochs``, or the ``trials`` named.
        top: With ``max_epochs``: how many of the trials that ran to the end.
        trials: With ``max_epochs``: the trial ids to train longer (any that kept a checkpoint).
        budget_worker_hours: The sweep's ``budget.worker_hours`` from now on (raised, say): a
            sweep that spent its budget runs nothing more unless it is raised.
        budget_wall_hours: The sweep's ``budget.wall_hours`` from now on.
        sweep: The sweep file, changed (its space, say): the new trials come from it, the
            earlier ones told to its searcher where they fit its space
            (:func:`tuning.driver.extension.refit`); its ``search.num_samples`` (or
            ``num_samples``) counts the earlier trials too.

    Raises:
        SweepError: If ``experiment`` is not a lightsweep experiment Ray Tune can restore, or
            another driver runs it, or the extension asked for cannot apply, naming the flag.
        StorageFullError: If the storage device filled up again.
    """
    probe_layers(stock_ray)
    ledger = Ledger.load(experiment)
    path = Location.parse(experiment)
    changed: SweepSpec | None = None
    if sweep is not None:
        changed = load_spec(sweep, {"launch_dir": ledger.spec.launch_dir,
                                    "storage": ledger.spec.storage,
                                    "search.num_samples": num_samples})
        check_changed_sweep(ledger.spec, changed)
        num_samples = changed.search.num_samples
    more = more_trials(ledger.spec, num_samples)
    if more is not None and max_epochs is not None:
        raise SweepError(f"{'--sweep' if changed else '--num-samples'}, --max-epochs: one "
                         "extension at a time. Fix: resume with one of them, then the other")
    if changed is not None and more is None:
        raise SweepError(
            f"--sweep: {sweep} asks for {changed.search.num_samples} trials, and the sweep has "
            f"{ledger.spec.search.num_samples}. Fix: raise its search.num_samples (or give "
            "--num-samples N), the trials in all")
    trials_to_train_longer(ledger, max_epochs, top, trials)  # refused now, before Ray starts
    budget = {key: value for key, value in (("budget.worker_hours", budget_worker_hours),
                                            ("budget.wall_hours", budget_wall_hours))
              if value is not None}
    with DriverLease(path, wait_s=stale_after_s() + HEARTBEAT_S if wait_for_lease else 0.0):
        if budget:  # the sweep's from now on, kept in its record for every later resume
            ledger = Ledger.load(path)
            ledger.spec = ledger.spec.with_overrides(budget)
            ledger.save(path)
        if budget_spent(ledger.spec, ledger.trials.values()):
            logger.info("%s: the %s; nothing runs. Fix: raise it: lightsweep resume %s "
                        "--budget-worker-hours H (or --budget-wall-hours H)", path,
                        budget_line(ledger.spec, ledger.trials.values()), path)
            return _outcome(path)
        outcome = _outcome(path)
        extending = more is not None or max_epochs is not None
        if outcome.unfinished or any(
                t.status in ("pending", "running") for t in ledger.trials.values()):
            outcome = _resume(ledger, path, address)
            if not extending or outcome.unfinished:
                return outcome
        elif not extending:
            logger.info("%s is finished: %d trials ended (%d failed); nothing to run",
                        path, outcome.finished + outcome.errored, outcome.errored)
            return outcome
        ledger = Ledger.load(path)
        if changed is not None:
            return _extend(ledger, path, address, changed)
        if more is not None:
            return _extend(ledger, path, address,
                           ledger.spec.with_overrides({"search.num_samples": more}))
        longer = trials_to_train_longer(ledger, max_epochs, top, trials)
        return _extend(ledger, path, address,
                       ledger.spec.with_overrides({"scheduler.max_epochs": max_epochs}), longer)


def _extend(ledger: Ledger, path: Location, address: str | None, spec: SweepSpec,
            longer: tuple[TrialRecord, ...] = ()) -> SweepOutcome:
    """Runs an extension of a finished sweep as a new Ray Tune run in the same experiment:
    ``spec``'s trials beyond the sweep's, or the trials ``longer`` trained on to ``spec``'s
    epochs. Its searcher is the sweep's, continued from the state Tune saved at its end (the
    study holds every earlier trial, pruned or complete, and the sampler's random state goes
    on): new trials are numbered, and seeded, on from the earlier ones."""
    spec.enter_project()
    searcher: Searcher | None = None
    if spec.space != ledger.spec.space:
        searcher = _searcher_of_changed_space(ledger, path, spec)
    elif spec.search_space.searched:
        searcher = build_searcher(spec, path=path)
        if not continue_searcher(path, searcher):
            raise SweepError(
                f"{path}: Ray Tune saved no state of the sweep's searcher, so its study cannot "
                "go on. Fix: launch a new sweep with --warm-start from this one")
        if longer:
            if not isinstance(searcher, TruthfulOptunaSearch):
                raise SweepError(
                    "--max-epochs: training trials longer tells Optuna their new epochs through "
                    "lightsweep's searcher, which is off with the installed Ray (see the warning "
                    "above). Fix: the Ray of constraints.txt")
            searcher.train_longer(list(longer), spec.scheduler.max_epochs)
    extension = Extension.of(ledger, searcher, longer)
    address = address or os.environ.get("RAY_ADDRESS")
    with ClassCheck(spec, local=address is None) as check:
        concurrency = _connect(spec, address, path, check)
    if longer:
        logger.info("training %d trials of %s on to %d epochs (%s), %d at a time", len(longer),
                    path, spec.scheduler.max_epochs, ", ".join(t.trial_id for t in longer),
                    concurrency)
    else:
        logger.info("extending %s: %d more trials (%d of %d ran), %d at a time", path,
                    spec.search.num_samples - extension.first, len(ledger.trials),
                    spec.search.num_samples, concurrency)
    _fit(build_tuner(spec, path, concurrency, local=address is None, extension=extension), spec,
         path, address)
    return _outcome(path)


def _searcher_of_changed_space(ledger: Ledger, path: Location, spec: SweepSpec
                               ) -> TruthfulOptunaSearch:
    """A searcher of ``spec``'s changed space whose study starts with the sweep's, number for
    number: each earlier trial under its new distributions where it fits the space, out of the
    model where it does not (:func:`tuning.driver.extension.refit`)."""
    earlier = build_searcher(ledger.spec, path=path)
    if not (isinstance(earlier, TruthfulOptunaSearch) and ledger.spec.search_space.searched
            and continue_searcher(path, earlier)):
        raise SweepError(
            "--sweep: the experiment kept no study of lightsweep's searcher to go on from (it "
            "searched nothing, or the searcher's layer is off). Fix: launch a new sweep with "
            "--warm-start from this one")
    trials = refit(earlier.study.get_trials(deepcopy=False), spec.search_space)
    searcher = build_searcher(spec, warm_start=trials, path=path)
    if not isinstance(searcher, TruthfulOptunaSearch):
        raise SweepError("--sweep: lightsweep's searcher is off with the installed Ray (see the "
                         "warning above). Fix: the Ray of constraints.txt")
    searcher.know_trials(earlier)
    left_out = sum(OUTSIDE_ATTR in t.user_attrs for t in trials)
    logger.info("the changed space: %d of the %d earlier trials fit it and go on in its study; "
                "%d are left out of its model (their records stay)", len(trials) - left_out,
                len(trials), left_out)
    return searcher


def _resume(ledger: Ledger, path: Location, address: str | None) -> SweepOutcome:
    spec = ledger.spec
    spec.enter_project()
    restored = restore_whole_state(Path(path.uri)) if path.is_local else []
    if restored:
        logger.warning("Ray Tune's saved state was cut short (a full disk?): put back the last "
                       "whole copy of %s", ", ".join(restored))
    if not tune.Tuner.can_restore(path.uri):
        raise SweepError(
            f"{path}: Ray Tune saved no state to resume from (the sweep died before its first "
            "checkpoint of state). Fix: launch it again under a new --name"
        )
    if spec.search_space.searched and not searcher_state_saved(path):
        # Tune would restore the searcher as it was before its first proposal, and Optuna would
        # fail on it; the trials it proposed could not be told from new ones.
        epochs = sum(t.epochs for t in ledger.trials.values())
        raise SweepError(
            f"{path}: the sweep stopped (a full disk?) before Ray Tune first saved its searcher's "
            f"state, so it cannot go on where it stopped. Its {len(ledger.trials)} trials and "
            f"{epochs} epochs stay in its leaderboard. Fix: launch it again under a new --name, "
            f"with --warm-start {path} to start from what they learned"
        )
    lost, adopted = match_saved_search(path)
    for trial_id in lost:
        logger.warning("trial %s: Ray Tune's saved state lost it (the driver died while saving); "
                       "its configuration runs again as the next new trial", trial_id)
    if adopted:
        logger.info("the searcher's saved state was older than Ray Tune's: told Optuna of %s",
                    ", ".join(adopted))
    address = address or os.environ.get("RAY_ADDRESS")
    with ClassCheck(spec, local=address is None) as check:
        _connect(spec, address, path, check)
    outcome = _outcome(path)
    logger.info("resuming %s: %d of %d trials finished", path, outcome.finished,
                spec.search.num_samples)
    tuner = tune.Tuner.restore(
        path.uri, trainable=_trainable(spec, path, address is None), resume_unfinished=True,
        resume_errored=False, restart_errored=False,
    )
    _fit(tuner, spec, path, address)
    return _outcome(path)
