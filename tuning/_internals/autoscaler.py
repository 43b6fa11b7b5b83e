"""Train's fixed scaling policy, without its requests to Ray's autoscaler.

Train tells the autoscaler what each run's workers need through a cluster-wide coordinator actor,
a process of its own that holds 0.12 GB. A local Ray has no autoscaler, so lightsweep sets
:data:`AUTOSCALER_REQUESTS_ENV` to "0" there and the coordinator is never started; on a cluster
the requests go on as Ray sends them. Private: the policy's class and hooks. Public way: none
(Train has no option for it); where this layer is off, the coordinator starts.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from tuning._internals.probe import enabled, layer

LAYER = "no-autoscaler-requests"
# "0": Train asks no autoscaler for its runs' workers (lightsweep sets it for a local Ray).
AUTOSCALER_REQUESTS_ENV = "LIGHTSWEEP_AUTOSCALER_REQUESTS"
_HOOKS = ("after_controller_start", "_maybe_send_resource_request", "_send_resource_request")


@layer(LAYER, "sending no resource requests to a local Ray's missing autoscaler",
       "Train starts its autoscaling coordinator actor, as on a cluster", since="2.55")
def _probe() -> None:
    from ray.train.v2._internal.execution.scaling_policy.fixed import FixedScalingPolicy

    for hook in _HOOKS:
        getattr(FixedScalingPolicy, hook)


@cache
def _policy_class() -> type:
    from ray.train.v2._internal.execution.scaling_policy.fixed import FixedScalingPolicy

    def quiet(self: Any, *args: Any) -> None:
        pass  # Ray's starts the coordinator's client, or sends it a request

    return type("FixedScalingWithoutAutoscaler", (FixedScalingPolicy,),
                {hook: quiet for hook in _HOOKS})


def without_autoscaler(controller_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Train controller arguments whose fixed scaling policy sends no autoscaler requests, where
    the sweep's driver said there is no autoscaler."""
    if os.environ.get(AUTOSCALER_REQUESTS_ENV) != "0" or not enabled(LAYER):
        return controller_kwargs
    from ray.train.v2._internal.execution.scaling_policy.fixed import FixedScalingPolicy

    policy = controller_kwargs.get("scaling_policy")
    if type(policy) is FixedScalingPolicy:
        return {**controller_kwargs,
                "scaling_policy": _policy_class()(policy.scaling_config)}
    return controller_kwargs
