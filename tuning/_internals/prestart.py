"""Python workers started ahead by a node's raylet, with the runtime env Train will ask for.

:mod:`tuning.trial.warm_pool` starts Train's workers before their runs need them. The raylet
gives an actor only an idle worker of its own runtime env, compared as Ray serializes it, so the
text is predicted from this process's own env and what Train and Tune add to it, and idle
workers are counted by Ray's process titles. Private: the core worker's serialized runtime env,
``WorkerGroup._get_worker_runtime_env``, Tune's ``class_cache``, the raylet's
``PrestartWorkers`` gRPC call, the GCS's per-node available resources, the internal key-value
store, and the titles Ray gives its worker processes. Public way: none (Ray has no Python API to
start workers ahead with a given runtime env); where this layer is off, each run starts its
workers as Ray does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tuning._internals.probe import layer

LAYER = "workers-started-ahead"


@layer(LAYER, "starting Train workers ahead of their runs",
       "each run starts its workers as Ray does")
def _probe() -> None:
    import ray
    from ray._private.grpc_utils import init_grpc_channel
    from ray.core.generated import node_manager_pb2, node_manager_pb2_grpc
    from ray.experimental import internal_kv
    from ray.train.v2._internal.execution.worker_group.worker_group import WorkerGroup
    from ray.tune.execution import class_cache

    del init_grpc_channel
    getattr(node_manager_pb2, "PrestartWorkersRequest")  # noqa: B009
    getattr(node_manager_pb2_grpc.NodeManagerServiceStub, "__init__")  # noqa: B009
    for name in ("_internal_kv_get", "_internal_kv_put"):
        getattr(internal_kv, name)
    getattr(WorkerGroup, "_get_worker_runtime_env")  # noqa: B009
    class_cache.DEFAULT_ENV_VARS, class_cache.ENV_VARS_TO_PROPAGATE  # noqa: B018
    getattr(ray._private.state, "available_resources_per_node")  # noqa: B009


def own_serialized_runtime_env() -> str:
    """This process's runtime env as Ray serialized it: what the actors it creates inherit."""
    import ray

    worker: Any = ray._private.worker.global_worker
    core_worker: Any = worker.core_worker
    return str(core_worker.get_current_runtime_env())


def train_worker_runtime_env(worker_runtime_env: dict[str, Any]) -> dict[str, Any]:
    """The runtime env Train gives a run's worker actors for ``RunConfig(worker_runtime_env=...)``:
    Train adds the variables it propagates from this process."""
    from ray.train.v2._internal.execution.worker_group.worker_group import WorkerGroup

    return dict(WorkerGroup._get_worker_runtime_env(worker_runtime_env))


def tune_trial_runtime_env() -> dict[str, Any]:
    """The runtime env Ray Tune gives a trial's actor when this process runs the Tuner (its
    default variables, and those it propagates from this process)."""
    from ray.tune.execution import class_cache

    env_vars = dict(class_cache.DEFAULT_ENV_VARS)
    env_vars.update({name: os.environ[name] for name in class_cache.ENV_VARS_TO_PROPAGATE
                     if name in os.environ})
    return {"env_vars": env_vars}


def child_runtime_env(parent: str, child: dict[str, Any]) -> str:
    """The serialized runtime env of an actor created with ``child`` by a process whose own is
    ``parent``, as Ray's core worker writes it (the child's keys over the parent's, their
    ``env_vars`` merged; compact JSON, keys sorted): a worker started ahead with this text is
    one the raylet gives that actor, any other text is not."""
    merged: dict[str, Any] = json.loads(parent) if parent else {}
    for key, value in child.items():
        if key == "env_vars" and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return json.dumps(merged, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def prestart_workers(serialized_runtime_env: str, count: int, keep_alive_s: int) -> None:
    """Asks this node's raylet to start ``count`` Python workers of this job with that runtime
    env, kept for at least ``keep_alive_s`` while idle.

    Raises:
        grpc.RpcError: The raylet refused or did not answer.
    """
    import ray
    from ray._private.grpc_utils import init_grpc_channel
    from ray.core.generated import common_pb2, node_manager_pb2, node_manager_pb2_grpc

    worker: Any = ray._private.worker.global_worker
    node: Any = worker.node
    stub = node_manager_pb2_grpc.NodeManagerServiceStub(
        init_grpc_channel(f"{node.node_ip_address}:{node.node_manager_port}"))
    request: Any = node_manager_pb2.PrestartWorkersRequest(  # type: ignore[attr-defined]
        language=common_pb2.Language.Value("PYTHON"),  # type: ignore[attr-defined]
        job_id=worker.current_job_id.binary(), keep_alive_duration_secs=keep_alive_s,
        num_workers=count)
    request.runtime_env_info.serialized_runtime_env = serialized_runtime_env
    stub.PrestartWorkers(request, timeout=10)


def free_cpus_here() -> float:
    """CPUs of this process's node that no task, actor or placement group holds now
    (``ray.available_resources()`` says it for the whole cluster only)."""
    import ray

    per_node: dict[str, dict[str, float]] = ray._private.state.available_resources_per_node()
    return float(per_node.get(ray.get_runtime_context().get_node_id(), {}).get("CPU", 0.0))


def internal_kv_get(key: str) -> str | None:
    """A value of Ray's internal key-value store (the GCS's), shared by the job's processes
    (a named actor would cost a process)."""
    from ray.experimental import internal_kv

    value = internal_kv._internal_kv_get(key)
    return None if value is None else bytes(value).decode()


def internal_kv_put(key: str, value: str) -> None:
    from ray.experimental import internal_kv

    internal_kv._internal_kv_put(key, value, overwrite=True)


def started_ahead_here(env: str, ready: bool | None = None, proc: Path = Path("/proc")) -> int:
    """Ray workers of this host started with the runtime env whose text is ``env`` (its
    variables all set) and not yet taken by an actor: ready (idle), still starting, or either
    (``ready=None``). Ray names a worker's process ``ray::IDLE`` once it is ready, and after
    its actor's class once taken. 0 where the host has no ``/proc``."""
    wanted = {f"{k}={v}".encode() for k, v in json.loads(env).get("env_vars", {}).items()
              if "${" not in v}  # expanded as the worker started
    count = 0
    for entry in proc.glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes()
            idle = cmdline.startswith(b"ray::IDLE")
            starting = not cmdline.startswith(b"ray::") and b"default_worker.py" in cmdline
            if not (idle if ready else starting if ready is False else idle or starting):
                continue
            if wanted <= set((entry / "environ").read_bytes().split(b"\0")):
                count += 1
        except OSError:  # ended meanwhile, or not ours to read
            continue
    return count
