"""Relative paths a cluster's nodes will not have: data outside the launch directory, or left
out of what Ray ships by .gitignore, in arguments and in the classes' own defaults."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tuning.config.shipping import unshipped_paths, why_not_shipped


class TutorialDataModule:
    """A DataModule's signature as Lightning's tutorial writes it."""

    def __init__(self, data_dir: str = "./data", batch_size: int = 32) -> None:
        self.data_dir, self.batch_size = data_dir, batch_size


@pytest.fixture
def launch_dir(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    (root / "configs").mkdir()
    (tmp_path / "shared").mkdir()
    return root


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_gitignored_data_is_named_with_the_fix(launch_dir: Path) -> None:
    subprocess.run(["git", "init", "-q", str(launch_dir)], check=True)
    (launch_dir / ".gitignore").write_text("data/\n")
    warnings = unshipped_paths({"datamodule_args": {"batch_size": 64}},
                               {"datamodule_args": TutorialDataModule}, launch_dir)
    assert len(warnings) == 1
    assert warnings[0].startswith("datamodule_args: TutorialDataModule's default data_dir: "
                                  "'./data' exists here, but not on the cluster's nodes "
                                  "(.gitignore leaves it out")
    assert "Fix: put it on storage every node mounts" in warnings[0]
    # Given as an argument, the argument is named instead of the default.
    [warning] = unshipped_paths({"datamodule_args": {"data_dir": "data"}},
                                {"datamodule_args": TutorialDataModule}, launch_dir)
    assert warning.startswith("datamodule_args.data_dir: 'data' exists here")


def test_paths_outside_the_launch_directory_are_not_shipped(launch_dir: Path) -> None:
    assert "outside the launch directory" in str(why_not_shipped("../shared", launch_dir))
    assert why_not_shipped("configs", launch_dir) is None  # shipped with the working directory
    assert why_not_shipped("no/such/dir", launch_dir) is None  # not a path here either
    assert why_not_shipped(".venv", launch_dir) is None  # absent here
    (launch_dir / ".venv").mkdir()
    assert "does not ship .venv/" in str(why_not_shipped(".venv", launch_dir))
