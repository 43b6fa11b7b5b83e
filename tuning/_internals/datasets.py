"""No dataset manager for a Train run that has no datasets.

Train starts a dataset manager for every run, datasets or not: one more Ray process to start,
import and stop per trial, for nothing (lightsweep's trials load their data in the DataModule).
Private: the trainer's ``_create_default_callbacks`` and Train's datasets callback class. Public
way: none (Train has no option for it); where this layer is off, each run starts its manager.
"""

from __future__ import annotations

from typing import Any

from tuning._internals.probe import enabled, layer

LAYER = "no-dataset-manager"


def _datasets_callback() -> type:
    from ray.train.v2._internal.callbacks import datasets

    found: type = datasets.DatasetsCallback
    return found


@layer(LAYER, "starting no dataset manager per trial",
       "Train starts one for each run, as it does for every run", since="2.54")
def _probe() -> None:
    from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer

    _datasets_callback()
    getattr(DataParallelTrainer, "_create_default_callbacks")  # noqa: B009


def without_dataset_manager(callbacks: list[Any], has_datasets: bool) -> list[Any]:
    """Train's default callbacks of a run, less the dataset manager's where it has no datasets."""
    if has_datasets or not enabled(LAYER):
        return callbacks
    kind = _datasets_callback()
    return [c for c in callbacks if not isinstance(c, kind)]
