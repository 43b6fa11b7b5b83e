"""Where a trial's fit runs and reports: a Ray Train run's workers, or Tune's trial process.

The fit is one piece of code (:func:`tuning.trial.worker.train_worker`) for both trial runners:

- ``resources.trial_runner: train`` (the default): every trial is a Ray Train run; each worker
  reports to Train, which hands rank 0's reports and checkpoints on to Tune
  (:func:`tuning.trial.driver.run_trial`).
- ``inline``: a one-worker trial's fit runs in Tune's own trial process, which Tune reuses from
  trial to trial (torch and Lightning imported once), and reports to Tune directly; Tune keeps
  its checkpoints (``checkpoint_*`` in the trial's directory) and restores the trial from them.

Only this module tells the two apart; the worker asks it, never Ray, where it is.
"""

from __future__ import annotations

import abc
import shutil
import tempfile
from pathlib import Path
from typing import Any

import ray
import ray.train
from ray import tune
from typing_extensions import override


class TrialSession(abc.ABC):
    """The run a fit is part of: its size, its rank, its checkpoints and where it reports."""

    #: What ``trial_runner`` this session serves (``ran/runner`` in the trial's reports).
    runner: str
    #: The checkpoint class reports take and :meth:`checkpoint` returns.
    checkpoint_class: type[Any]
    #: Set by :meth:`report` when the scheduler stopped the trial and the fit should end at
    #: this epoch's end (inline; a Train run is stopped from outside, by Train).
    stop_requested: bool = False

    @property
    @abc.abstractmethod
    def world_size(self) -> int:
        """How many processes fit this trial together (DDP ranks)."""

    @property
    @abc.abstractmethod
    def world_rank(self) -> int:
        """This process's rank among them."""

    @abc.abstractmethod
    def device(self) -> Any:
        """The ``torch.device`` Ray gave this process (its GPU, else the CPU)."""

    @abc.abstractmethod
    def checkpoint(self) -> Any | None:
        """The run's own last checkpoint (after a retry or a resume), or None."""

    @abc.abstractmethod
    def report(self, metrics: dict[str, Any], checkpoint: Any | None, last: bool = False
               ) -> None:
        """Reports one epoch's metrics, and rank 0's checkpoint, to the scheduler.

        Under Train every rank calls it (a collective); inline there is only rank 0.

        Args:
            metrics: The epoch's scalar metrics.
            checkpoint: Rank 0's checkpoint after the epoch (None on other ranks).
            last: Whether it is the fit's last epoch (``max_epochs``), whose report a session
                may hold until :meth:`close`.
        """

    def close(self) -> None:  # noqa: B027 (a hook: most sessions hold nothing)
        """Called once the fit and its loggers are done: hands on what :meth:`report` held."""


class TrainSession(TrialSession):
    """A worker of the trial's Ray Train run."""

    runner = "train"
    checkpoint_class = ray.train.Checkpoint

    @property
    @override
    def world_size(self) -> int:
        return int(ray.train.get_context().get_world_size())

    @property
    @override
    def world_rank(self) -> int:
        return int(ray.train.get_context().get_world_rank())

    @override
    def device(self) -> Any:
        import ray.train.torch  # imports torch: only processes that fit call this

        return ray.train.torch.get_device()

    @override
    def checkpoint(self) -> Any | None:
        return ray.train.get_checkpoint()

    @override
    def report(self, metrics: dict[str, Any], checkpoint: Any | None, last: bool = False
               ) -> None:
        ray.train.report(metrics, checkpoint=checkpoint)


class TuneSession(TrialSession):
    """Tune's trial process itself (``trial_runner: inline``): one rank, no Train run.

    When the scheduler stops the trial (ASHA, and at ``max_epochs``), Tune ends the trial's
    function inside :meth:`report`, where the trial waits for Tune to take each result, with
    ``SystemExit``. Raised there, it would cut Lightning's epoch end short: its loggers (W&B)
    would never get that epoch's row. So :meth:`report` sets :attr:`stop_requested` instead, the
    fit ends at the epoch's end, and the caller ends the function as Tune expects
    (:func:`tuning.trial.driver.run_trial`). The last epoch's report is held until
    :meth:`close`, after the fit and its W&B run have finished: Tune stops a trial at
    ``max_epochs`` and, when no trial takes its process next, ends the process without waiting
    for the trial's thread, which would lose that epoch's row.
    """

    def __init__(self) -> None:
        self._held: tuple[dict[str, Any], Path | None] | None = None

    runner = "inline"
    checkpoint_class = tune.Checkpoint

    @property
    @override
    def world_size(self) -> int:
        return 1

    @property
    @override
    def world_rank(self) -> int:
        return 0

    @override
    def device(self) -> Any:
        import torch

        # Ray shows a trial's process only the GPUs it was given (CUDA_VISIBLE_DEVICES); Train's
        # get_device() answers only inside a Train run.
        if ray.get_gpu_ids() and torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    @override
    def checkpoint(self) -> Any | None:
        return tune.get_checkpoint()

    @override
    def report(self, metrics: dict[str, Any], checkpoint: Any | None, last: bool = False
               ) -> None:
        if self.stop_requested:  # a fit that went on (Lightning's min_epochs): ends now
            raise SystemExit(0)
        if last:
            # The fit removes the checkpoint's directory once this returns: a copy is held.
            held = None
            if checkpoint is not None:
                held = Path(tempfile.mkdtemp(prefix="lightsweep-last-"))
                shutil.copytree(checkpoint.path, held, dirs_exist_ok=True)
            self._held = (metrics, held)
            return
        try:
            self.hand_to_tune(metrics, checkpoint)
        except SystemExit:
            self.stop_requested = True

    @override
    def close(self) -> None:
        if self._held is None:
            return
        (metrics, held), self._held = self._held, None
        try:
            checkpoint = self.checkpoint_class.from_directory(str(held)) if held else None
            try:
                self.hand_to_tune(metrics, checkpoint)
            except SystemExit:
                self.stop_requested = True
        finally:
            if held is not None:
                shutil.rmtree(held, ignore_errors=True)

    def hand_to_tune(self, metrics: dict[str, Any], checkpoint: Any | None) -> None:
        """Tune's report, which returns once Tune took the result, or raises ``SystemExit``
        when Tune stopped the trial."""
        tune.report(metrics, checkpoint=checkpoint)
