"""Reads W&B offline runs back: what ``wandb sync`` would upload, without a W&B server.

An offline run is ``wandb/offline-run-<time>-<id>/run-<id>.wandb``: W&B's record log (a header,
then 32 KiB blocks of length-prefixed chunks, LevelDB's log format) of protobuf ``Record``s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

_HEADER = 7  # b":W&B", a 2-byte magic and a version byte
_BLOCK = 32 * 1024
_CHUNK_HEADER = 7  # crc32, length (2 bytes), type
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    """One offline run: its identity, config and history rows."""

    run_id: str
    project: str
    group: str
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)


def _records(path: Path) -> list[Any]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    records, pending, pos = [], b"", _HEADER
    while pos + _CHUNK_HEADER <= len(data):
        if _BLOCK - pos % _BLOCK < _CHUNK_HEADER:  # a block's tail too short for a chunk
            pos += _BLOCK - pos % _BLOCK
            continue
        length = int.from_bytes(data[pos + 4:pos + 6], "little")
        kind = data[pos + 6]
        chunk = data[pos + _CHUNK_HEADER:pos + _CHUNK_HEADER + length]
        pos += _CHUNK_HEADER + length
        if kind == 0:  # zero padding
            continue
        pending = chunk if kind in (_FULL, _FIRST) else pending + chunk
        if kind in (_FULL, _LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def _items(items: Any) -> dict[str, Any]:
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}


def read_run(path: Path) -> OfflineRun:
    """The run in ``path`` (a ``run-<id>.wandb`` file)."""
    run: OfflineRun | None = None
    config: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    for record in _records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run = OfflineRun(r.run_id, r.project, r.run_group, r.display_name)
            config.update(_items(r.config.update))
        elif kind == "config":
            config.update(_items(record.config.update))
        elif kind == "history":
            history.append(_items(record.history.item))
    assert run is not None, f"{path} has no run record"
    run.config = {k: v.get("value", v) if isinstance(v, dict) else v for k, v in config.items()}
    run.history = history
    return run


def offline_runs(experiment: Path) -> list[OfflineRun]:
    """Every offline run under ``experiment``'s ``wandb`` directory."""
    return [read_run(p) for p in sorted((experiment / "wandb").glob("offline-run-*/run-*.wandb"))]
