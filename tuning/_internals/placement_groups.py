"""The placement groups that a job's actors made, and whether each maker has died.

Ray removes a placement group that an actor made only once both the actor and its job have ended
(a killed trial process's group holds its CPUs until the sweep ends). A Train run's group is made
by Train's controller, which lightsweep runs in the trial's process; Ray's answer is a cleaner per
run, a detached actor that asks the dashboard's State API each second whether the controller
lives. The sweep's driver reads the same fact from the GCS instead: no process, no dashboard.
Private: the GCS accessor of ``ray._private.state`` and the creator fields of its placement-group
records. Public way: none (``ray.util.placement_group_table`` leaves the maker out; the State API
needs the dashboard); where this layer is off, Train's cleaners do it.
"""

from __future__ import annotations

from typing import Any

from tuning._internals.probe import enabled, layer

LAYER = "driver-removes-placement-groups"
# "driver": the sweep's driver removes the placement group of a Train run whose process died,
# so Train starts no cleaner of its own.
PLACEMENT_GROUPS_ENV = "LIGHTSWEEP_PLACEMENT_GROUPS"


def _record() -> Any:
    """The GCS's protobuf message of a placement group (generated code: no type stubs)."""
    from ray.core.generated import gcs_pb2

    return gcs_pb2.PlacementGroupTableData  # type: ignore[attr-defined]


@layer(LAYER, "the sweep's driver removing the placement groups of dead trial processes",
       "Train's cleaner actors remove them")
def _probe() -> None:
    import ray._raylet
    from ray._private.state import state

    fields = set(_record().DESCRIPTOR.fields_by_name)
    missing = {"creator_actor_id", "creator_actor_dead", "creator_job_id", "state"} - fields
    if missing:
        raise AttributeError(f"placement-group records lack {sorted(missing)}")
    raylet: Any = ray._raylet  # compiled: no type stubs
    raylet.GlobalStateAccessor.get_placement_group_table  # noqa: B018
    getattr(state, "_global_state_accessor")  # noqa: B009


def can_list(address: str | None) -> bool:
    """Whether :func:`actors_placement_groups` works with this Ray and a driver that joins
    ``address`` (None: a local Ray). A Ray Client driver (``ray://``) has no GCS connection of
    its own."""
    return not (address or "").startswith("ray://") and enabled(LAYER)


def actors_placement_groups() -> list[tuple[Any, bool]]:
    """The placement groups, not yet removed, that actors of this job made: each with whether
    its maker has died."""
    import ray
    from ray._private.state import state
    from ray.util.placement_group import PlacementGroup

    job = bytes.fromhex(ray.get_runtime_context().get_job_id())
    table = _record()
    accessor: Any = state._global_state_accessor  # None until ray.init
    found = []
    for raw in accessor.get_placement_group_table():
        group = table.FromString(raw)
        if (group.creator_job_id == job and not group.is_detached
                and not ray.ActorID(group.creator_actor_id).is_nil()
                and group.state != table.REMOVED):
            found.append((PlacementGroup(ray.PlacementGroupID(group.placement_group_id)),
                          group.creator_actor_dead))
    return found
