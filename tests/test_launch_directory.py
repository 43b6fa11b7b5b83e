"""Trials run their code in the directory the sweep was launched from: a DataModule written the
way Lightning's tutorial writes it (``data_dir="./data"``) reads the launch directory's data in
every trial, on every runner; and a sweep whose every trial fails says so, naming the error."""

from __future__ import annotations

import logging
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_digits

from tuning import launch
from tuning.cli import main
from tuning.record import Ledger

pytestmark = [pytest.mark.ray]

DATAMODULE = textwrap.dedent('''
    """A DataModule as Lightning's tutorial writes it: a relative default data_dir."""
    from pathlib import Path

    import lightning.pytorch as pl
    import numpy as np
    import torch
    from torch.utils.data import DataLoader, TensorDataset


    class TutorialDataModule(pl.LightningDataModule):
        def __init__(self, data_dir: str = "./data", batch_size: int = 32) -> None:
            super().__init__()
            self.data_dir = data_dir
            self.batch_size = batch_size

        def setup(self, stage=None):
            with np.load(Path(self.data_dir) / "digits.npz") as d:
                x = torch.as_tensor(d["x"], dtype=torch.float32)
                y = torch.as_tensor(d["y"])
            self.train = TensorDataset(x[:1400], y[:1400])
            self.val = TensorDataset(x[1400:], y[1400:])

        def train_dataloader(self):
            return DataLoader(self.train, batch_size=self.batch_size, shuffle=True)

        def val_dataloader(self):
            return DataLoader(self.val, batch_size=self.batch_size)
''')
SWEEP = {
    "module": "lightning_modules.classifier:Classifier",
    "datamodule": "tutorial_data:TutorialDataModule",
    "module_args": {"arch": "mlp", "input_shape": [64], "width": 32, "depth": 1},
    "space": {"module.lr": {"loguniform": [1e-3, 1e-1]}},
    "metric": "val/acc", "mode": "max",
    "search": {"num_samples": 2, "seed": 0},
    "scheduler": {"name": "fifo", "max_epochs": 1},
    "wandb": {"enabled": False},
}


@pytest.fixture
def launch_dir(tmp_path: Path) -> Iterator[Path]:
    """A user's directory: their DataModule's module and the sweep file, and the working
    directory while the test runs."""
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "tutorial_data.py").write_text(DATAMODULE)
    (folder / "sweep.yaml").write_text(yaml.safe_dump(SWEEP))
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(cwd)


@pytest.mark.timeout(400)
@pytest.mark.parametrize("runner", ["train", "inline"])
def test_every_trial_reads_the_launch_directorys_relative_data_path(
        ray_session: None, launch_dir: Path, runner: str) -> None:
    digits = load_digits()
    (launch_dir / "data").mkdir()
    np.savez(launch_dir / "data" / "digits.npz", x=digits.data / 16.0, y=digits.target)
    outcome = launch("sweep.yaml", storage=str(launch_dir.parent / "runs"), name=runner,
                     trial_runner=runner)
    assert (outcome.finished, outcome.errored) == (2, 0)
    trials = Ledger.load(outcome.path).trials.values()
    assert all(t.history and t.history[-1].metrics["val/acc"] > 0.5 for t in trials)
    # Lightning's own files go to the trial's directory, never into the user's.
    assert sorted(p.name for p in launch_dir.iterdir() if p.name != "__pycache__") == [
        "data", "sweep.yaml", "tutorial_data.py"]


@pytest.mark.timeout(400)
def test_a_sweep_whose_every_trial_fails_ends_naming_the_failure(
        ray_session: None, launch_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    runs = launch_dir.parent / "runs"
    with caplog.at_level(logging.INFO):
        code = main(["launch", "sweep.yaml", "--storage", str(runs), "--name", "no-data"])
    assert code == 1
    ledger = Ledger.load(runs / "no-data")
    errors = {t.error for t in ledger.trials.values()}
    assert [t.status for t in ledger.trials.values()] == ["errored", "errored"]
    assert errors == {"FileNotFoundError: [Errno 2] No such file or directory: 'data/digits.npz'"}
    end = caplog.records[-1].getMessage()
    first = next(iter(ledger.trials))
    assert end == (f"no best trial: 2 of 2 trials failed; the first, trial {first}: "
                   "FileNotFoundError: [Errno 2] No such file or directory: 'data/digits.npz' "
                   f"(its traceback: {runs / 'no-data' / f'trial_{first}' / 'error.txt'}). "
                   "Each raised in your code (a retry would raise again)")
    assert (runs / "no-data" / f"trial_{first}" / "error.txt").is_file()
