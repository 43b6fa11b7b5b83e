from __future__ import annotations

import json
from pathlib import Path

from tuning.layout import checkpoint_usage, remove_untracked_checkpoints


def test_checkpoint_usage_counts_checkpoint_dirs_and_their_bytes(tmp_path: Path) -> None:
    run = tmp_path / "trial_abc" / "train"
    for name, size in [("checkpoint_2026-01-01_00-00-01.0", 100), ("checkpoint_2026-01-01_00-00-02.0", 50)]:
        (run / name / "sub").mkdir(parents=True)
        (run / name / "checkpoint.ckpt").write_bytes(b"x" * size)
        (run / name / "sub" / "extra").write_bytes(b"y" * 7)
    (run / "checkpoint_manager_snapshot.json").write_text("{}")  # a file, not a checkpoint
    (run / "checkpoint_2026-01-01_00-00-03.0").mkdir()  # being created or deleted: no room taken
    assert checkpoint_usage(tmp_path, "abc") == (2, 164)


def test_checkpoint_usage_of_a_trial_without_checkpoints_is_zero(tmp_path: Path) -> None:
    assert checkpoint_usage(tmp_path, "missing") == (0, 0)


def test_remove_untracked_checkpoints_keeps_those_ray_train_tracks(tmp_path: Path) -> None:
    run = tmp_path / "trial_abc" / "train"
    names = [f"checkpoint_2026-01-01_00-00-0{i}.0" for i in range(4)]
    for name in names:
        (run / name).mkdir(parents=True)
        (run / name / "checkpoint.ckpt").write_bytes(b"x")
    (run / "checkpoint_manager_snapshot.json").write_text(json.dumps({
        "checkpoint_results": [{"checkpoint_dir_name": names[0]}, {"checkpoint_dir_name": names[1]}],
        "latest_checkpoint_result": {"checkpoint_dir_name": names[2]},
    }))
    removed = remove_untracked_checkpoints(tmp_path, "abc")
    assert [p.name for p in removed] == [names[3]]
    assert sorted(p.name for p in run.glob("checkpoint_*/")) == names[:3]


def test_remove_untracked_checkpoints_without_a_snapshot_removes_nothing(tmp_path: Path) -> None:
    (tmp_path / "trial_abc" / "train" / "checkpoint_x").mkdir(parents=True)
    assert remove_untracked_checkpoints(tmp_path, "abc") == []
    assert (tmp_path / "trial_abc" / "train" / "checkpoint_x").is_dir()
