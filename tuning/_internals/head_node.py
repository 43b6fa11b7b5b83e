"""The resource Ray gives its head node alone, to place a trial's process there.

A trial's process only waits on its Train run; on the head node, losing any other node costs
workers (which are retried), never a trial's process. Private: the ``node:__internal_head__``
resource. Public way: none (``NodeAffinitySchedulingStrategy`` needs the node's id, which a
Tune trial's resources cannot name); where this layer is off, trials' processes go anywhere.
"""

from __future__ import annotations

from tuning._internals.probe import enabled, layer

LAYER = "trial-process-on-head"
HEAD_RESOURCE = "node:__internal_head__"


@layer(LAYER, "placing trials' processes on the head node",
       "trials' processes go to any node", execution=False, needs_ray=True)
def _probe() -> None:
    import ray

    if ray.is_initialized() and HEAD_RESOURCE not in ray.cluster_resources():
        raise KeyError(f"the cluster has no {HEAD_RESOURCE!r} resource")


def head_resources() -> dict[str, float]:
    """What a trial's process asks for to run on the head node ({} where the layer is off);
    asked once Ray is up (the sweep's driver builds the Tuner after it joins)."""
    return {HEAD_RESOURCE: 0.001} if enabled(LAYER) else {}
