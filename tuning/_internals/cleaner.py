"""Train's placement-group cleaner, one per trial process instead of one per Train run.

Train starts a cleaner (a detached actor: a process) for every run, to remove the run's
placement group should the process running its controller die, and stops it when the run ends.
Where the controller runs in the trial's process (:mod:`tuning._internals.controller`), which
Tune reuses from trial to trial, one cleaner watches that process and takes each new placement
group as it comes: a process start less per trial. It ends when the process does, after removing
the last run's placement group if that is still there. Private: Train's cleaner callback and its
hooks. Public way: none; where this layer is off, each run gets Ray's own cleaner.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from tuning._internals.probe import enabled, layer

LAYER = "cleaner-per-process"


def _cleaner_callback() -> type:
    from ray.train.v2._internal.callbacks import placement_group_callback

    found: type = placement_group_callback.PlacementGroupCleanerCallback
    return found


@layer(LAYER, "one placement-group cleaner per trial process",
       "each Train run starts a cleaner of its own, as Ray does", since="2.53")
def _probe() -> None:
    from ray.train.v2._internal.constants import GET_ACTOR_TIMEOUT_S

    cls = _cleaner_callback()
    for hook in ("after_controller_start", "before_controller_shutdown",
                 "before_controller_abort"):
        getattr(cls, hook)
    del GET_ACTOR_TIMEOUT_S


def is_train_cleaner(callback: Any) -> bool:
    """Whether ``callback`` is Train's own cleaner (False where this Ray has none to name)."""
    try:
        return type(callback) is _cleaner_callback()
    except ImportError:  # a Ray whose Train has no cleaner callback
        return False


@cache
def cleaner_per_process_class() -> type:
    """The cleaner class that serves every run of its process (built on first call)."""
    import ray
    from ray.exceptions import GetTimeoutError, RayActorError
    from ray.train.v2._internal.constants import GET_ACTOR_TIMEOUT_S
    from typing_extensions import override

    class CleanerPerProcess(_cleaner_callback()):  # type: ignore[misc]
        # This process's cleaner: (the actor id of the process it watches, the cleaner's handle).
        _of_process: tuple[str, Any] | None = None
        started = 0  # cleaners this process started (one, however many runs it held)

        @override
        def after_controller_start(self, train_run_context: Any) -> None:
            watched = ray.get_runtime_context().get_actor_id()
            kept = CleanerPerProcess._of_process
            if kept is not None and kept[0] == watched:
                try:  # still there (nothing else stops it; its node may have gone)
                    ray.get(kept[1].start_monitoring.remote(), timeout=GET_ACTOR_TIMEOUT_S)
                    self._controller_actor_id, self._cleaner = kept
                    return
                except (RayActorError, GetTimeoutError):
                    CleanerPerProcess._of_process = None
            super().after_controller_start(train_run_context)
            if self._cleaner is not None and self._controller_actor_id is not None:
                CleanerPerProcess._of_process = (self._controller_actor_id, self._cleaner)
                CleanerPerProcess.started += 1

        @override
        async def before_controller_shutdown(self) -> None:
            pass  # kept for this process's next run; the run removes its own placement group

        @override
        def before_controller_abort(self) -> None:
            pass  # kept: it removes the placement group should this process die before the abort

    return CleanerPerProcess


def with_cleaner_per_process(callbacks: list[Any]) -> list[Any]:
    """Train's default callbacks with its cleaner per run replaced by one per process, where
    the layer is on."""
    if not enabled(LAYER):
        return callbacks
    return [cleaner_per_process_class()() if is_train_cleaner(c) else c for c in callbacks]
