"""Train workers started ahead of need, with torch, Lightning and the user's classes imported.

Every Train run starts its workers afresh (Ray ends an actor's process with the actor), and a
new worker spends seconds importing torch and Lightning before its fit begins. Here, while a run
fits (at its first report), a trial's process asks its node's raylet to start up to
``resources.warm_workers`` workers ahead of the next trials, on CPUs of the node that no trial
holds, with exactly the runtime env that Train will give its worker actors (the raylet gives
an actor only an idle worker of its own env) and with :mod:`tuning.trial.warm.sitecustomize`
on their path, which imports what the fit needs as they start. They import on the free cores
while the run goes on; the next run waits for any still importing (the raylet would start
another worker for its actor rather than wait) and its workers take them. On a node whose
cores trials fill, none is started: a worker started ahead would only import on a core a fit
needs.

The text of the env is predicted (:func:`tuning._internals.prestart.child_runtime_env`) and then learned: each
worker notes its own in Ray's key-value store (:func:`note_worker_env`), and later runs of the
job use that. Each worker records whether its process was started ahead
(:data:`WORKER_STARTS_FILE`, in a local experiment's trial directory). Where Ray moved a part
this relies on, the pool turns itself off and runs start their workers as Ray does.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import grpc
import ray.train
from typing_extensions import override

from tuning._internals import prestart
from tuning._internals.prestart import started_ahead_here
from tuning._internals.probe import MOVED_ERRORS, enabled
from tuning.config.spec import ResourcesConfig, SweepSpec
from tuning.contracts import LoopConfig

logger = logging.getLogger(__name__)

WARM_IMPORTS_ENV = "LIGHTSWEEP_WARM_IMPORTS"
SITE_DIR = Path(__file__).parent / "warm"
# One line per Train worker process of a trial's runs: {"rank", "pid", "started_ahead" (before the
# run began), "env_as_started" (its runtime env is the text workers are started ahead with),
# "env_from" ("predicted" or "learned"), "torch_threads" (as its fit runs), "attempt_start" (the
# run's), "process_start", "loop_start" (its train loop's); times in epoch seconds}.
WORKER_STARTS_FILE = "worker_starts.jsonl"
# How long the raylet keeps an idle worker started ahead: the gap between two trials, with room;
# one that no run took by then goes, and its memory with it.
KEEP_ALIVE_S = 120
_ENV_KEY = "lightsweep:train_worker_env:"
# The longest a run waits for workers started ahead to finish their imports (~5 CPU-seconds each).
READY_WAIT_S = 30.0
# How long a worker the raylet starts runs Ray's runtime-env set-up before it becomes the worker
# process, with the env's variables (~1 s on 2 busy cores; a run that came sooner started a
# second worker: seen in CI).
SPAWN_S = 5.0


def warm_imports(spec: SweepSpec) -> list[str]:
    """What a Train worker of ``spec``'s trials imports before its fit: the fit's own module
    (Lightning, Ray Train) and the modules of the user's LightningModule and DataModule."""
    # "package.module:Class", or LightningCLI's "package.module.Class"
    user = [path.partition(":")[0] if ":" in path else path.rpartition(".")[0]
            for path in (spec.module, spec.datamodule)]
    return list(dict.fromkeys(["tuning.trial.worker", *filter(None, user)]))


def workers_to_start(*, wanted: int, started: int, free_cpus: float, cpus_per_worker: float) -> int:
    """How many workers to start ahead now: up to ``wanted`` ready in all, counting the ``started``
    ones not yet taken, and no more than the node's CPUs that nothing holds could run."""
    room = int(free_cpus // cpus_per_worker) if cpus_per_worker > 0 else wanted
    return max(0, min(wanted, room) - started)


def note_worker_env(loop_config: LoopConfig) -> None:
    """In a Train worker, before its fit: records whether this process was started ahead, and
    notes its runtime env's text for the job's later runs when it differs from the one the
    trial predicted."""
    warm = loop_config.warm
    if not warm:
        return
    now = time.time()
    process_start = now - _process_age_s()
    started_ahead = process_start < warm["attempt_start"]
    own: str | None = None
    try:
        own = prestart.own_serialized_runtime_env()
        if own != warm["env"]:
            # Workers started with the predicted text were not for this run: the job's later
            # runs start theirs with this worker's own.
            prestart.internal_kv_put(_ENV_KEY + warm["job"], own)
    except MOVED_ERRORS as error:  # the trial's process turns its pool off
        logger.debug("cannot note this worker's runtime env: %s", error)
    trial_dir = loop_config.trial_dir
    if trial_dir:
        import torch

        line = json.dumps({"rank": ray.train.get_context().get_world_rank(), "pid": os.getpid(),
                           "started_ahead": started_ahead, "env_as_started": own == warm["env"],
                           "torch_threads": torch.get_num_threads(),
                           "env_from": warm["env_from"], "attempt_start": warm["attempt_start"],
                           # Where a run's start-up went: its process started, its train loop began.
                           "process_start": process_start, "loop_start": now})
        # One short line per write: whole, even with the trial's other ranks appending.
        with open(Path(trial_dir, WORKER_STARTS_FILE), "a", encoding="utf-8") as out:
            out.write(line + "\n")


@dataclass
class WarmPool:
    """The trial process's side: the workers' env, and the workers started ahead for it."""

    resources: ResourcesConfig
    imports: str
    # Why pools are off in this process (Ray moved a part they use), or None: said once.
    off: ClassVar[str | None] = None
    # "learned" or "predicted": where the env text of the last start came from.
    env_from: str | None = None
    topped_up: bool = False  # by this run (:meth:`during_run`)

    @classmethod
    def for_spec(cls, spec: SweepSpec) -> WarmPool:
        return cls(spec.resources, ",".join(warm_imports(spec)))

    def worker_runtime_env(self) -> dict[str, Any]:
        """``RunConfig(worker_runtime_env=...)``: the start-up imports, ahead of this process's
        ``PYTHONPATH`` (the user's modules: the sweep's launch directory, or the working dir
        shipped to a cluster)."""
        path = os.pathsep.join(filter(None, [str(SITE_DIR), _job_pythonpath()]))
        return {"env_vars": {"PYTHONPATH": path, WARM_IMPORTS_ENV: self.imports}}

    def before_sweep(self, concurrency: int) -> None:
        """In the sweep's driver, on a local Ray: starts the first trials' workers ahead, on the
        node's free CPUs, so that they import while Tune starts the trials' processes."""
        if not enabled(prestart.LAYER):
            return
        try:
            trial = prestart.child_runtime_env(prestart.own_serialized_runtime_env(),
                                             prestart.tune_trial_runtime_env())
        except MOVED_ERRORS as error:
            self._turn_off(error)
            return
        env = self._env(parent=trial)
        res = self.resources
        if env is None or res.warm_workers == 0:
            return
        self._start(env, workers_to_start(
            wanted=concurrency * res.workers_per_trial, started=started_ahead_here(env),
            free_cpus=self._free_cpus(), cpus_per_worker=res.cpus_per_worker))

    def before_run(self) -> dict[str, Any] | None:
        """Waits, after workers were started ahead on this node, until enough of them are ready
        for the run (a few seconds at most: a worker still importing is not given to an actor,
        and the raylet would start another for it, importing twice on busy cores), so that the
        run's workers take them; returns what the workers record (their
        ``LoopConfig.warm``), or None when the pool is off."""
        attempt_start = time.time()
        self.topped_up = False
        env = self._env()
        if env is None:
            return None
        started_at = self._started_at()
        if started_at is not None and time.time() - started_at < READY_WAIT_S:
            # Only after a start here: a starting worker may be another trial's, started cold.
            # For its first second or so a worker is Ray's set-up process, without the env's
            # variables yet: counted as starting only after that.
            deadline = time.monotonic() + READY_WAIT_S
            while (started_ahead_here(env, ready=True) < self.resources.workers_per_trial
                   and (started_ahead_here(env, ready=False)
                        or time.time() - started_at < SPAWN_S)
                   and time.monotonic() < deadline):
                time.sleep(0.2)
        return {"env": env, "env_from": self.env_from, "job": _job_hex(),
                "attempt_start": attempt_start}

    def during_run(self) -> None:
        """At the run's first report, with its workers holding their CPUs: starts workers ahead
        for the next trials, up to ``resources.warm_workers`` on this node, on its CPUs that
        no trial holds. They import on those while this run fits; on a node its trials fill,
        none is started."""
        if self.topped_up:
            return
        self.topped_up = True
        env = self._env()
        res = self.resources
        if env is None or res.warm_workers == 0:
            return
        self._start(env, workers_to_start(
            wanted=res.warm_workers, started=started_ahead_here(env),
            free_cpus=self._free_cpus(), cpus_per_worker=res.cpus_per_worker))

    def _env(self, parent: str | None = None) -> str | None:
        """The text of the run workers' runtime env, as a process whose own is ``parent`` (this
        one's if None) would start them."""
        if self.off is not None or not enabled(prestart.LAYER):
            return None
        try:
            learned = prestart.internal_kv_get(_ENV_KEY + _job_hex())
            if learned is not None:
                self.env_from = "learned"
                return learned
            child = prestart.train_worker_runtime_env(self.worker_runtime_env())
            self.env_from = "predicted"
            return prestart.child_runtime_env(parent or prestart.own_serialized_runtime_env(), child)
        except MOVED_ERRORS as error:
            self._turn_off(error)
            return None

    def _free_cpus(self) -> float:
        try:
            return prestart.free_cpus_here()
        except MOVED_ERRORS as error:
            self._turn_off(error)
            return 0.0

    def _start(self, env: str, count: int) -> None:
        if count <= 0 or self.off is not None:
            return
        try:
            prestart.prestart_workers(env, count, KEEP_ALIVE_S)
            prestart.internal_kv_put(_started_key(), str(time.time()))
        except (grpc.RpcError, *MOVED_ERRORS) as error:
            self._turn_off(error)

    def _started_at(self) -> float | None:
        """When workers were last started ahead on this node (for this job), if ever."""
        try:
            when = prestart.internal_kv_get(_started_key())
        except MOVED_ERRORS as error:
            self._turn_off(error)
            return None
        return None if when is None else float(when)

    @classmethod
    def _turn_off(cls, error: BaseException) -> None:
        cls.off = f"{type(error).__name__}: {error}"
        logger.warning("Train workers are not started ahead in this trial process: Ray's parts "
                       "for it moved (%s); runs start their workers as Ray does", cls.off)


class StartWorkersAhead(ray.train.UserCallback):
    """Train callback of a run: :meth:`WarmPool.during_run` at its reports (the first starts
    workers ahead)."""

    def __init__(self, pool: WarmPool) -> None:
        self.pool = pool

    @override
    def after_report(self, run_context: Any, metrics: list[dict[str, Any]],
                     checkpoint: ray.train.Checkpoint | None) -> None:
        self.pool.during_run()


def _process_age_s() -> float:
    """Seconds since this process started, on the boot clock (psutil's start time is rounded to
    whole seconds of the boot time, too coarse to tell a worker started for this run)."""
    try:
        ticks = float(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - ticks / float(os.sysconf("SC_CLK_TCK"))
    except OSError:
        import psutil

        return time.time() - float(psutil.Process().create_time())


def _job_pythonpath() -> str | None:
    """The ``PYTHONPATH`` the job's runtime env sets (the same in the driver and in every trial
    process), else this process's own (a cluster's, whose working dir Ray adds to it)."""
    try:
        job = json.loads(prestart.own_serialized_runtime_env() or "{}")
    except MOVED_ERRORS:  # ValueError: not JSON
        job = {}
    path = job.get("env_vars", {}).get("PYTHONPATH")
    return str(path) if path else os.environ.get("PYTHONPATH")


def _started_key() -> str:
    return f"lightsweep:started_ahead:{_job_hex()}:{ray.get_runtime_context().get_node_id()}"


def _job_hex() -> str:
    return str(ray.get_runtime_context().get_job_id())
