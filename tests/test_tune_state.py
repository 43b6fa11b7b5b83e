from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuning.driver.tune_state import BACKUP_DIR, TuneStateBackup, restore_whole_state


def test_a_cut_short_state_file_is_put_back_from_its_last_whole_copy(tmp_path: Path) -> None:
    state = tmp_path / "experiment_state-2026-01-01_00-00-00.json"
    searcher = tmp_path / "searcher-state-2026-01-01_00-00-00.pkl"
    state.write_text(json.dumps({"trials": [1, 2]}))
    searcher.write_bytes(b"\x80\x05K\x01.")  # pickle.dumps(1)
    TuneStateBackup(tmp_path).on_step_end(iteration=1, trials=[])
    assert sorted(p.name for p in (tmp_path / BACKUP_DIR).iterdir()) == [state.name, searcher.name]

    state.write_text('{"trials": [1, 2, 3')  # the disk filled mid-write
    assert restore_whole_state(tmp_path) == [state.name]
    assert json.loads(state.read_text()) == {"trials": [1, 2]}
    assert searcher.read_bytes() == b"\x80\x05K\x01.", "a whole file is left alone"


def test_a_file_being_written_is_not_copied(tmp_path: Path) -> None:
    (tmp_path / "experiment_state-x.json").write_text('{"trials": [')
    TuneStateBackup(tmp_path).on_step_end(iteration=1, trials=[])
    assert not (tmp_path / BACKUP_DIR).exists()


def test_a_costly_copy_makes_the_next_one_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tune's state grows with the sweep: copying it every second would take over the driver.
    from tuning.driver import tune_state

    clock = [100.0]
    monkeypatch.setattr(tune_state.time, "monotonic", lambda: clock[0])
    real_write = tune_state.atomic_write_bytes

    def slow_write(path: Path, data: bytes) -> None:
        clock[0] += 1.0  # a copy that takes a second
        real_write(path, data)

    monkeypatch.setattr(tune_state, "atomic_write_bytes", slow_write)
    state = tmp_path / "experiment_state-x.json"
    backup = tmp_path / BACKUP_DIR / state.name
    keeper = TuneStateBackup(tmp_path)
    state.write_text(json.dumps({"trials": [1]}))
    keeper.on_step_end(iteration=1, trials=[])
    assert json.loads(backup.read_text()) == {"trials": [1]}

    state.write_text(json.dumps({"trials": [1, 2]}))
    clock[0] += 10.0
    keeper.on_step_end(iteration=2, trials=[])
    assert json.loads(backup.read_text()) == {"trials": [1]}, "copied again within 50 s"
    clock[0] += 1 / tune_state.BACKUP_SHARE
    keeper.on_step_end(iteration=3, trials=[])
    assert json.loads(backup.read_text()) == {"trials": [1, 2]}
