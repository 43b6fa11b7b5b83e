"""The trial driver: what it starts per trial, and what it imports."""

from __future__ import annotations

import subprocess
import sys

import ray.train
from ray.train.torch import TorchTrainer
from ray.train.v2._internal.callbacks.datasets import DatasetsCallback

from tuning.compat import TorchTrainerWithoutDatasets


def _noop(config: dict) -> None:
    pass


def _default_callbacks(trainer_cls: type[TorchTrainer]) -> list[object]:
    trainer = trainer_cls(_noop, scaling_config=ray.train.ScalingConfig(num_workers=1))
    return trainer._create_default_callbacks()


def test_a_trial_starts_no_dataset_manager_actor() -> None:
    # Ray's own trainer does start one per run (if this fails, Ray changed: drop the subclass).
    assert any(isinstance(c, DatasetsCallback) for c in _default_callbacks(TorchTrainer))
    lean = _default_callbacks(TorchTrainerWithoutDatasets)
    assert not any(isinstance(c, DatasetsCallback) for c in lean)
    assert len(lean) == len(_default_callbacks(TorchTrainer)) - 1


def test_the_trial_driver_does_not_import_lightning() -> None:
    # Trial drivers and Train's controllers never train: Lightning would cost each seconds of
    # start-up and hundreds of MB. Only the workers import it (tuning.trial.worker).
    code = ("import sys, tuning.trial.driver, tuning.driver.sweep, tuning.cli; "
            "print(sorted(m for m in ('lightning', 'pytorch_lightning', 'torchvision') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_log_filter_every_ray_process_runs_imports_nothing_heavy() -> None:
    # Ray runs tuning.trial.ray_logs in every process of a sweep (controllers, actors, workers).
    code = ("import sys, tuning.trial.ray_logs; print(sorted(m for m in ('ray', 'torch', 'optuna', "
            "'pandas', 'pydantic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_workers_keep_lightnings_per_trial_logging_interval_warning_off_the_console() -> None:
    import warnings

    from tuning.trial.worker import _quiet_worker_logs

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _quiet_worker_logs(world_size=1)
        warnings.warn("The number of training batches (4) is smaller than the logging interval "
                      "Trainer(log_every_n_steps=50). Set a lower value for log_every_n_steps if "
                      "you want to see logs for the training epoch.", UserWarning, stacklevel=1)
        warnings.warn("a warning of the user's own", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["a warning of the user's own"]
