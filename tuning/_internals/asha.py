"""Ray Tune's ASHA, told what an extended sweep's earlier trials reached at each rung.

A sweep extended with more trials (``resume --num-samples``) runs them as a new Tune run, whose
ASHA starts with empty rungs: its first new trials would be ranked against each other alone, and
none stopped until enough of them reached a rung. Here each rung starts with the value every
earlier trial had there, as if it had just reported it. Private: ``_brackets`` of
``AsyncHyperBandScheduler`` and ``_rungs`` of its ``_Bracket``. Public way: none (Tune's
schedulers take no history); where this layer is off, the new trials are ranked against each
other alone.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

from ray.tune.schedulers import AsyncHyperBandScheduler

from tuning._internals.probe import layer

LAYER = "asha-earlier-trials"


@layer(LAYER, "an extended sweep's ASHA ranking its new trials against the earlier trials' "
       "results at each rung", "its new trials are ranked against each other alone",
       execution=False)
def _probe() -> None:
    from ray.tune.schedulers import async_hyperband

    bracket = getattr(async_hyperband, "_Bracket")  # noqa: B009
    if ("self._brackets =" not in inspect.getsource(AsyncHyperBandScheduler)
            or "self._rungs =" not in inspect.getsource(bracket)):
        raise AttributeError("ASHA's brackets or rungs moved")


def record_earlier(scheduler: AsyncHyperBandScheduler,
                   earlier: Mapping[str, Mapping[int, float]], mode: str) -> None:
    """Puts into each rung of ``scheduler`` every earlier trial's value at the first epoch it
    reached at or past the rung's (``earlier``: trial id -> epoch -> metric value)."""
    sign = 1.0 if mode == "max" else -1.0  # ASHA compares values it was given times this
    for bracket in scheduler._brackets:
        for milestone, recorded in bracket._rungs:
            for trial_id, values in earlier.items():
                reached = [epoch for epoch in values if epoch >= milestone]
                if reached:
                    recorded[trial_id] = sign * values[min(reached)]
