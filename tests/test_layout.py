from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuning.record.layout import (
    CHECKPOINT_SNAPSHOT,
    checkpoint_usage,
    keep_whole_snapshot,
    remove_stray_checkpoints,
    repair_train_snapshot,
)
from tuning.record.location import Location


@pytest.fixture(params=["local", "s3"])
def experiment(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    """An experiment directory on a local disk, or in an S3 bucket."""
    if request.param == "local":
        return Location.parse(tmp_path)
    return Location.parse(request.getfixturevalue("s3_bucket")) / "runs/exp"


def test_checkpoint_usage_counts_checkpoint_dirs_and_their_bytes(experiment: Location) -> None:
    run = experiment / "trial_abc/train"
    for name, size in [("checkpoint_2026-01-01_00-00-01.0", 100), ("checkpoint_2026-01-01_00-00-02.0", 50)]:
        (run / name / "checkpoint.ckpt").write_bytes(b"x" * size)
        (run / name / "sub/extra").write_bytes(b"y" * 7)
    (run / "checkpoint_manager_snapshot.json").write_text("{}")  # a file, not a checkpoint
    assert checkpoint_usage(experiment, "abc") == (2, 164)


def test_a_checkpoint_dir_without_files_takes_no_room(tmp_path: Path) -> None:
    (tmp_path / "trial_abc/train/checkpoint_2026-01-01_00-00-03.0").mkdir(parents=True)  # being made
    assert checkpoint_usage(Location.parse(tmp_path), "abc") == (0, 0)


def test_checkpoint_usage_of_a_trial_without_checkpoints_is_zero(experiment: Location) -> None:
    assert checkpoint_usage(experiment, "missing") == (0, 0)


def _snapshot(run: Location, tracked: list[str], latest: str) -> None:
    (run / "checkpoint_manager_snapshot.json").write_text(json.dumps({
        "checkpoint_results": [{"checkpoint_dir_name": name} for name in tracked],
        "latest_checkpoint_result": {"checkpoint_dir_name": latest},
    }))


def test_stray_checkpoints_are_those_ray_train_dropped_or_no_result_named(
    experiment: Location,
) -> None:
    run = experiment / "trial_abc/train"
    names = [f"checkpoint_2026-01-01_00-00-0{i}.0" for i in range(5)]
    for name in names:
        (run / name / "checkpoint.ckpt").write_bytes(b"x")
    # Results named 0-2. Train dropped 2 (num_to_keep); 3 it registered after Tune had stopped
    # the trial, so no result names it; 4 was persisted after the stop and never tracked.
    _snapshot(run, tracked=[*names[:2], names[3]], latest=names[3])
    removed = remove_stray_checkpoints(experiment, "abc", reported=set(names[:3]))
    assert removed == [names[2], names[3], names[4]]
    assert not (run / names[4] / "checkpoint.ckpt").exists()
    assert checkpoint_usage(experiment, "abc") == (2, 2)


def test_without_a_snapshot_only_unreported_checkpoints_are_stray(experiment: Location) -> None:
    run = experiment / "trial_abc/train"
    (run / "checkpoint_a/checkpoint.ckpt").write_bytes(b"x")
    (run / "checkpoint_b/checkpoint.ckpt").write_bytes(b"x")
    assert remove_stray_checkpoints(experiment, "abc", reported={"checkpoint_a"}) == ["checkpoint_b"]
    assert (run / "checkpoint_a/checkpoint.ckpt").is_file()


def test_a_snapshot_cut_short_by_a_full_disk_removes_only_unreported_checkpoints(
    tmp_path: Path,
) -> None:
    experiment = Location.parse(str(tmp_path))
    run = experiment / "trial_t/train"
    for name in ("checkpoint_a", "checkpoint_b"):
        (run / name / "checkpoint.ckpt").write_bytes(b"x")
    (run / CHECKPOINT_SNAPSHOT).write_bytes(b"")  # Train's write, cut short
    assert remove_stray_checkpoints(experiment, "t", {"checkpoint_a"}) == ["checkpoint_b"]


def test_a_trial_whose_reported_checkpoints_train_dropped_keeps_its_latest(tmp_path: Path) -> None:
    # ASHA stopped the trial at epoch 1, Train ran epochs 2 and 3 before it ended, and its
    # num_to_keep=2 then dropped epoch 1's, the one checkpoint a result named.
    experiment = Location.parse(tmp_path)
    run = experiment / "trial_abc/train"
    names = [f"checkpoint_2026-01-01_00-00-0{i}.0" for i in range(1, 4)]
    for name in names[1:]:
        (run / name / "checkpoint.ckpt").write_bytes(b"x")
    _snapshot(run, tracked=names[1:], latest=names[2])
    assert remove_stray_checkpoints(experiment, "abc", reported={names[0]}) == [names[1]]
    assert checkpoint_usage(experiment, "abc") == (1, 1)


def test_a_snapshot_cut_short_gets_back_its_last_whole_copy(tmp_path: Path) -> None:
    experiment = Location.parse(tmp_path)
    run = experiment / "trial_abc/train"
    for name in ("checkpoint_a", "checkpoint_b"):
        (run / name / "checkpoint.ckpt").write_bytes(b"x")
    _snapshot(run, tracked=["checkpoint_a"], latest="checkpoint_a")
    keep_whole_snapshot(experiment, "abc")
    whole = (run / CHECKPOINT_SNAPSHOT).read_bytes()
    assert repair_train_snapshot(experiment, "abc") is None, "a whole snapshot is left alone"

    # Train registered checkpoint_b, and the disk filled as it rewrote its list.
    (run / CHECKPOINT_SNAPSHOT).write_bytes(whole[:15])
    keep_whole_snapshot(experiment, "abc")  # never copies a cut one over the whole copy
    assert "restored" in (repair_train_snapshot(experiment, "abc") or "")
    assert (run / CHECKPOINT_SNAPSHOT).read_bytes() == whole


def test_a_cut_snapshot_whose_copy_names_deleted_checkpoints_is_removed(tmp_path: Path) -> None:
    experiment = Location.parse(tmp_path)
    run = experiment / "trial_abc/train"
    (run / "checkpoint_b/checkpoint.ckpt").write_bytes(b"x")
    _snapshot(run, tracked=["checkpoint_a"], latest="checkpoint_a")
    keep_whole_snapshot(experiment, "abc")
    # Train evicted checkpoint_a after a snapshot this copy never saw, then the disk filled.
    (run / CHECKPOINT_SNAPSHOT).write_bytes(b"{")
    # Ray Train would refuse a list naming a missing checkpoint: the run starts over instead.
    assert "starts over" in (repair_train_snapshot(experiment, "abc") or "")
    assert not (run / CHECKPOINT_SNAPSHOT).exists()


def test_a_missing_snapshot_needs_no_repair(experiment: Location) -> None:
    assert repair_train_snapshot(experiment, "abc") is None


def test_checkpoint_usage_counts_an_inline_trials_tune_checkpoints_too(tmp_path: Path) -> None:
    trial = tmp_path / "trial_abc"
    for name, size in [("checkpoint_000000", 30), ("checkpoint_000001", 20)]:  # Tune's names
        (trial / name).mkdir(parents=True)
        (trial / name / "checkpoint.ckpt").write_bytes(b"x" * size)
    (trial / "lightning_checkpoints").mkdir()  # a user's ModelCheckpoint: not the trial's own
    (trial / "lightning_checkpoints" / "best.ckpt").write_bytes(b"z" * 1000)
    (trial / "result.json").write_text("{}")
    assert checkpoint_usage(Location.parse(tmp_path), "abc") == (2, 50)
