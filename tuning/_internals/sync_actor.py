"""Train's synchronization actor, made to serve one Train run after another.

Train starts a ``SynchronizationActor`` (the barrier its workers meet at to report and
checkpoint together) for every run, and kills it as the run ends: one more Ray process to start,
import Train in and hold (0.24 GB) per trial. A trial's process runs one Train run at a time and
is reused for the next trial (Tune's ``reuse_actors``), so :mod:`tuning._internals.controller`
keeps one of these per process and renews its state between runs. A module of its own: the
actor's process imports it, and nothing else of lightsweep. Private: ``SynchronizationActor``'s
class and ``__init__``. Public way: none (Train has no option for it).
"""

from __future__ import annotations

from typing import Any

import ray
from ray.train.v2._internal.execution.checkpoint.sync_actor import SynchronizationActor

_SynchronizationActorClass: Any = getattr(SynchronizationActor, "__ray_actor_class__")  # noqa: B009


@ray.remote(num_cpus=0)
class RenewableSynchronizationActor(_SynchronizationActorClass):  # type: ignore[misc]
    """Train's synchronization actor, with a method that gives it a fresh barrier."""

    async def renew(self, timeout_s: float | None, warn_interval_s: float) -> None:
        """Starts over as Train builds it for a new run (in the actor's event loop, where its
        barrier's condition lives)."""
        self.__init__(timeout_s=timeout_s, warn_interval_s=warn_interval_s)  # type: ignore[misc]
