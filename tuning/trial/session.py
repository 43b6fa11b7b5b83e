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
    def report(self, metrics: dict[str, Any], checkpoint: Any | None) -> None:
        """Reports one epoch's metrics, and rank 0's checkpoint, to the scheduler.

        Under Train every rank calls it (a collective); inline there is only rank 0.
        """


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
    def report(self, metrics: dict[str, Any], checkpoint: Any | None) -> None:
        ray.train.report(metrics, checkpoint=checkpoint)


class TuneSession(TrialSession):
    """Tune's trial process itself (``trial_runner: inline``): one rank, no Train run.

    When the scheduler stops the trial, Tune ends the fit inside :meth:`report`, where the trial
    waits for Tune to take each result: the process is then free for the next trial at once.
    """

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
    def report(self, metrics: dict[str, Any], checkpoint: Any | None) -> None:
        tune.report(metrics, checkpoint=checkpoint)
