"""What Ray Train's errors say of a run's workers: which of them died.

Exceptions raised by user code arrive wrapped as ``UserExceptionWithTraceback`` on every rank
that raised; a rank whose process died fails its health check instead, carrying the cause (Ray's
``ActorDiedError``, or ``OutOfMemoryError`` when its memory monitor killed it). Private: the
health-check exception classes. Public way: none (``TrainingFailedError`` does not say whether a
worker died or raised); where this layer is off, a death is known only where Ray lists the
actor's death itself.
"""

from __future__ import annotations

from tuning._internals.probe import enabled, layer

LAYER = "worker-deaths"
# Attributes of Ray's wrapper exceptions that hold what they wrap: Train's worker-group errors
# (public), task errors (public), controller failures and failed health checks (private).
WRAPPED_ATTRS = ("cause", "controller_failure", "health_check_failure")


@layer(LAYER, "telling a Train worker's death from its failed health check",
       "a death is retried only where Ray names the actor's death itself", execution=False)
def _probe() -> None:
    from ray.train.v2._internal.exceptions import (
        WorkerHealthCheckFailedError,
        WorkerHealthCheckTimeoutError,
    )

    del WorkerHealthCheckFailedError, WorkerHealthCheckTimeoutError


def worker_deaths(error: BaseException) -> list[BaseException]:
    """The deaths among a failed Train run's worker failures (each rank that failed its health
    check: the cause where Ray gives one, else the failure itself)."""
    if not enabled(LAYER):
        return []
    from ray.train.v2._internal.exceptions import (
        WorkerHealthCheckFailedError,
        WorkerHealthCheckTimeoutError,
    )

    failures = getattr(error, "worker_failures", None) or {}
    return [
        e.health_check_failure if isinstance(e, WorkerHealthCheckFailedError) else e
        for e in failures.values()
        if isinstance(e, WorkerHealthCheckFailedError | WorkerHealthCheckTimeoutError)
    ]
