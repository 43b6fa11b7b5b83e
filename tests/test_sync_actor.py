"""One synchronization actor per trial process: each Train run of the process meets at it, with a
fresh barrier (tuning._internals.sync_actor, tuning._internals.controller.reuse_synchronization_actor)."""

from __future__ import annotations

import time

import pytest
import ray
from ray.exceptions import RayActorError

from tuning._internals.controller import _ReusedSynchronizationActor

pytestmark = [pytest.mark.ray]


def _wait_until_dead(actor: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            ray.get(actor.get_world_size.remote(), timeout=10)  # type: ignore[attr-defined]
        except RayActorError:
            return
        time.sleep(0.1)
    raise AssertionError("the killed actor still answers")


def _meet(actor: object, world_size: int, run: str) -> list[str]:
    """Every rank of a run at the barrier: what each gets back (rank 0's data)."""
    return ray.get([actor.broadcast_from_rank_zero.remote(  # type: ignore[attr-defined]
        rank, world_size, f"{run}-{rank}", "report") for rank in range(world_size)])


@pytest.mark.timeout(120)
def test_run_after_run_meets_at_one_actor_with_a_fresh_barrier(ray_session) -> None:
    reused = _ReusedSynchronizationActor()
    first = reused.options().remote(timeout_s=60, warn_interval_s=60)
    assert _meet(first, 2, "run1") == ["run1-0", "run1-0"]
    # A run that ends with rank 1 at the barrier and rank 0 gone (killed, or stopped by ASHA).
    first.broadcast_from_rank_zero.remote(1, 2, "left", "report")

    second = reused.options().remote(timeout_s=60, warn_interval_s=60)
    assert second is first, "the next run of the process starts no actor"
    assert ray.get(second.get_world_size.remote()) == 0, "a fresh barrier"
    assert _meet(second, 1, "run2") == ["run2-0"], "not held by the last run's rank"
    assert _meet(second, 3, "run3") == ["run3-0"] * 3

    # Should it die, the next run starts another. (ray.kill returns before the actor is dead:
    # a call right after may still reach it, and CI once saw the renewal do so.)
    ray.kill(first)
    _wait_until_dead(first)
    third = reused.options().remote(timeout_s=60, warn_interval_s=60)
    assert third is not first
    assert _meet(third, 1, "run4") == ["run4-0"]
