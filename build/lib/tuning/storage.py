"""Checking, before any trial starts, that every node of a cluster sees the sweep's storage.

Ray Train finds out at a trial's first checkpoint, when a node writes where the others cannot
read, and fails that trial; a sweep would fail every trial that way, one by one.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from tuning.errors import SweepError

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 120.0


@ray.remote(num_cpus=0)
def _read_marker(path: str) -> str | None:
    marker = Path(path)
    return marker.read_text() if marker.is_file() else None


def check_shared_storage(storage: Path) -> None:
    """Writes a marker under ``storage`` here and reads it back from a task on every live node.

    Raises:
        SweepError: If a node does not see the marker: ``storage`` is not shared.
    """
    storage.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    marker = storage / f".lightsweep-shared-check-{token}"
    marker.write_text(token)
    try:
        nodes = [n for n in ray.nodes() if n["Alive"]]
        reads = [
            _read_marker.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
                node_id=n["NodeID"], soft=False)).remote(str(marker))
            for n in nodes
        ]
        seen = ray.get(reads, timeout=CHECK_TIMEOUT_S)
    finally:
        marker.unlink(missing_ok=True)
    blind = [f"{n['NodeManagerAddress']} ({n['NodeID'][:8]})"
             for n, value in zip(nodes, seen, strict=True) if value != token]
    if blind:
        raise SweepError(
            f"storage: {storage} is not shared: {len(blind)} of {len(nodes)} nodes cannot read a "
            f"file the driver wrote there ({', '.join(blind)}). Fix: pass --storage a path that "
            "every node mounts at the same place (NFS, EFS)"
        )
    logger.info("storage %s is shared by all %d nodes", storage, len(nodes))
