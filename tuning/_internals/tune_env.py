"""The environment variables Ray Tune passes from its driver to each trial's process.

Private: Tune's ``class_cache.ENV_VARS_TO_PROPAGATE``. Public way: none; where Ray moves it, none
are taken to pass on (and a sweep joining a Ray already initialised names them all as missing).
"""

from __future__ import annotations

from tuning._internals.probe import MOVED_ERRORS


def passed_to_trials() -> frozenset[str]:
    try:
        from ray.tune.execution import class_cache

        return frozenset(class_cache.ENV_VARS_TO_PROPAGATE)
    except MOVED_ERRORS:
        return frozenset()
