"""The trial's fit against the session it runs in (tuning.trial.session): what it reports, and
how it goes on from a checkpoint, whichever runner hands it the session."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
from ray import tune
from typing_extensions import override

from tests.conftest import BASE_SWEEP
from tuning.config.spec import SweepSpec
from tuning.record.layout import CHECKPOINT_NAME
from tuning.trial.session import TrainSession, TuneSession
from tuning.trial.worker import train_worker


class RecordingSession(TuneSession):
    """Inline's one process of rank 0, keeping a copy of each checkpoint, as Tune does, without
    Tune."""

    runner = "recording"

    def __init__(self, keep: Path, restored: Any | None = None) -> None:
        self.keep = keep
        self.restored = restored
        self.reports: list[tuple[dict[str, Any], Path | None]] = []

    @override
    def device(self) -> Any:
        import torch

        return torch.device("cpu")

    @override
    def checkpoint(self) -> Any | None:
        return self.restored

    @override
    def report(self, metrics: dict[str, Any], checkpoint: Any | None) -> None:
        kept = None
        if checkpoint is not None:  # the fit removes its directory once reported
            kept = self.keep / f"checkpoint_{len(self.reports)}"
            shutil.copytree(checkpoint.path, kept)
        self.reports.append((metrics, kept))


def _loop_config(max_epochs: int, known_epoch: int = 0) -> dict[str, Any]:
    data = copy.deepcopy(BASE_SWEEP)
    data["scheduler"]["max_epochs"] = max_epochs
    data["trainer_args"] = {"limit_train_batches": 4, "limit_val_batches": 2,
                            "log_every_n_steps": 1}
    spec = SweepSpec.model_validate(data)
    return {"spec": spec.model_dump(), "config": {"module.lr": 0.05, "datamodule.batch_size": 32},
            "known_epoch": known_epoch, "wandb": None, "trial_dir": None, "start_from": None}


@pytest.mark.timeout(120)
def test_the_fit_reports_each_epoch_with_its_checkpoint_to_its_session(tmp_path: Path) -> None:
    session = RecordingSession(tmp_path)
    train_worker(_loop_config(max_epochs=2), session)
    assert [m["epoch"] for m, _ in session.reports] == [1, 2]
    for metrics, kept in session.reports:
        assert 0.0 <= metrics["val/acc"] <= 1.0
        assert metrics["world_size"] == 1 and metrics["ran/runner"] == "recording"
        assert kept is not None and (kept / CHECKPOINT_NAME).is_file()


@pytest.mark.timeout(120)
def test_a_fit_handed_its_last_checkpoint_goes_on_from_the_next_epoch(tmp_path: Path) -> None:
    first = RecordingSession(tmp_path / "first")
    train_worker(_loop_config(max_epochs=2), first)
    last = first.reports[-1][1]
    restored = RecordingSession(tmp_path / "again", tune.Checkpoint.from_directory(str(last)))
    train_worker(_loop_config(max_epochs=3, known_epoch=2), restored)
    # Epoch 2 goes again without a checkpoint (the sweep may have missed it), then epoch 3 is new.
    assert [(m["epoch"], kept is not None) for m, kept in restored.reports] == [(2, False),
                                                                                (3, True)]
    assert restored.reports[0][0]["val/acc"] == first.reports[-1][0]["val/acc"]


def test_inline_is_one_process_of_rank_zero_and_train_asks_rays_context() -> None:
    inline, train = TuneSession(), TrainSession()
    assert (inline.world_size, inline.world_rank, inline.runner) == (1, 0, "inline")
    assert inline.checkpoint_class is tune.Checkpoint
    with pytest.raises(RuntimeError):  # outside a Train run, Ray Train has no context to give
        train.world_size  # noqa: B018
