"""Shared fixtures: sweep files written from a base that is valid, and one embedded Ray."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

# A valid, fast sweep: scikit-learn digits, a small MLP.
BASE_SWEEP: dict[str, Any] = {
    "module": "lightning_modules.classifier:Classifier",
    "datamodule": "lightning_modules.datamodules:DigitsDataModule",
    "module_args": {"arch": "mlp", "input_shape": [8, 8], "width": 32, "depth": 1},
    "space": {
        "module.lr": {"loguniform": [1e-3, 1e-1]},
        "datamodule.batch_size": {"choice": [32, 64]},
    },
    "metric": "val/acc",
    "mode": "max",
    "search": {"num_samples": 4, "seed": 0},
    "scheduler": {"max_epochs": 4, "grace_period": 1, "reduction_factor": 2},
    "resources": {"workers_per_trial": 1},
}

SweepWriter = Callable[..., Path]


@pytest.fixture
def sweep_data() -> dict[str, Any]:
    return copy.deepcopy(BASE_SWEEP)


@pytest.fixture
def write_sweep(tmp_path: Path) -> SweepWriter:
    """Writes a sweep file: the base, with top-level keys replaced (None removes a key)."""

    def write(data: dict[str, Any] | None = None, **changes: Any) -> Path:
        content = copy.deepcopy(BASE_SWEEP if data is None else data)
        for key, value in changes.items():
            if value is None:
                content.pop(key, None)
            else:
                content[key] = value
        path = tmp_path / "sweep.yaml"
        path.write_text(yaml.safe_dump(content, sort_keys=False))
        return path

    return write


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """One embedded Ray (2 CPUs, like CI) for the integration tests; this test process owns it.

    Started the way lightsweep starts its own, from the repository root so that workers import
    ``tests.user_modules``.
    """
    import ray

    from tuning.sweep import init_ray

    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        init_ray(None, num_cpus=2)
    finally:
        os.chdir(cwd)
    yield
    ray.shutdown()
