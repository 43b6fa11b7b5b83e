"""The storage check before Ray starts: it writes, and leaves the storage as it found it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuning.driver.storage import check_writable
from tuning.errors import SweepError
from tuning.record.location import Location


def test_a_writable_storage_is_left_as_it_was(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "earlier").mkdir()
    check_writable(Location.parse(tmp_path / "runs"))
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["earlier"]


def test_directories_made_for_the_check_are_removed_again(tmp_path: Path) -> None:
    check_writable(Location.parse(tmp_path / "new" / "runs"))
    assert not (tmp_path / "new").exists()


def test_an_unwritable_storage_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(SweepError, match=r"storage: cannot write to .*file/runs"):
        check_writable(Location.parse(tmp_path / "file" / "runs"))
