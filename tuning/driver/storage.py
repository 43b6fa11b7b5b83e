"""Checking, before any trial starts, that the sweep's storage is writable and that every node
of a cluster sees it.

Ray Train finds out at a trial's first checkpoint, when a node writes where the others cannot
read, and fails that trial; a sweep would fail every trial that way, one by one.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from pathlib import Path

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from tuning.errors import SweepError
from tuning.record.location import Location

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 120.0


@ray.remote(num_cpus=0)
def _read_marker(uri: str) -> str:
    marker = Location(uri)
    try:
        return marker.read_text() if marker.is_file() else "missing"
    except OSError as error:  # this node has no credentials for the bucket, or no route to it
        return f"unreadable: {error}"


def _write_marker(storage: Location) -> tuple[Location, str]:
    token = secrets.token_hex(16)
    marker = storage / f".lightsweep-shared-check-{token}"
    try:
        marker.write_text(token)
    except OSError as error:
        raise SweepError(
            f"storage: cannot write to {storage} ({error}). Fix: create it (for a URI, the "
            "bucket), and give this machine write access to it"
        ) from error
    return marker, token


def check_writable(storage: Location) -> None:
    """Writes and removes a marker under ``storage``, before Ray starts, and leaves it as it
    was: a local directory made for the marker is removed again (a sweep refused later, as
    the user's classes are checked, writes nothing).

    Raises:
        SweepError: If this machine cannot write there.
    """
    made = [] if not storage.is_local else [
        d for d in (Path(storage.uri), *Path(storage.uri).parents) if not d.exists()]
    marker, _ = _write_marker(storage)
    marker.remove()
    for directory in made:  # the deepest first
        with contextlib.suppress(OSError):  # another process wrote there meanwhile: keep it
            directory.rmdir()


def check_shared_storage(storage: Location) -> None:
    """Writes a marker under ``storage`` here and reads it back from a task on every live node.

    Raises:
        SweepError: If the driver cannot write there, or a node does not see the marker:
            ``storage`` is not shared, or a node lacks credentials for it.
    """
    marker, token = _write_marker(storage)
    try:
        nodes = [n for n in ray.nodes() if n["Alive"]]
        reads = [
            _read_marker.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
                node_id=n["NodeID"], soft=False)).remote(marker.uri)
            for n in nodes
        ]
        seen = ray.get(reads, timeout=CHECK_TIMEOUT_S)
    finally:
        marker.remove()
    blind = [f"{n['NodeManagerAddress']} ({n['NodeID'][:8]}: {value})"
             for n, value in zip(nodes, seen, strict=True) if value != token]
    if blind:
        fix = ("give every node credentials for it (an instance profile, or AWS_*/GOOGLE_* "
               "variables in the nodes' environment)" if not storage.is_local else
               "pass --storage a path that every node mounts at the same place (NFS, EFS), or "
               "a cloud URI (s3://bucket/path)")
        raise SweepError(
            f"storage: {storage} is not shared: {len(blind)} of {len(nodes)} nodes cannot read a "
            f"file the driver wrote there ({', '.join(blind)}). Fix: {fix}"
        )
    logger.info("storage %s is shared by all %d nodes", storage, len(nodes))
