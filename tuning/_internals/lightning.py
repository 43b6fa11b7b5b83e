"""Ray Train's Lightning strategy and environment, rebuilt on the other Lightning namespace.

``ray.train.lightning`` subclasses the namespace it imports first (``lightning.pytorch``), and
Lightning rejects strategies and plugins of the other namespace (ray-project/ray#47089). For a
LightningModule written against the other one, the same classes are rebuilt on that namespace's
base classes from Ray's own method definitions. Private: the names of those methods in Ray's
classes. Public way: none; where this layer is off, a module of the other namespace is refused
with a message saying which namespace to use.
"""

from __future__ import annotations

from typing import Any

from tuning._internals.probe import classes_in_source, layer, require_methods

LAYER = "lightning-other-namespace"
STRATEGY_MEMBERS = ("root_device", "distributed_sampler_kwargs")
ENVIRONMENT_MEMBERS = ("world_size", "global_rank", "local_rank", "node_rank", "set_world_size",
                       "set_global_rank", "teardown")


@layer(LAYER, "training a module of the Lightning namespace Ray's utilities were not built on",
       "such a module is refused", execution=False)
def _probe() -> None:
    # Read, not imported: importing ray.train.lightning imports Lightning and torch, which the
    # sweep's driver (where every layer is probed) never does.
    classes = classes_in_source("ray.train.lightning", "_lightning_utils.py")
    require_methods(classes, {"RayDDPStrategy": STRATEGY_MEMBERS,
                              "RayLightningEnvironment": ENVIRONMENT_MEMBERS},
                    "ray.train.lightning")


def members(cls: type, names: tuple[str, ...]) -> dict[str, Any]:
    """``names`` as ``cls`` itself defines them (KeyError where it does not)."""
    return {name: cls.__dict__[name] for name in names}
