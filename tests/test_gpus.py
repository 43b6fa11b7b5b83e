"""GPU sharing and precision against the card: what needs no GPU to check."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tuning.config.checks import Hardware, check_hardware, max_concurrent_trials
from tuning.config.gpus import (
    Gpu,
    check_precision_on,
    cluster_gpus,
    memory_fraction,
    share_error,
    trials_per_gpu,
)
from tuning.config.spec import ResourcesConfig, SweepSpec
from tuning.errors import SweepError

H100 = Gpu("NVIDIA H100 80GB HBM3", (9, 0))
T4 = Gpu("Tesla T4", (7, 5))
V100 = Gpu("Tesla V100-SXM2-16GB", (7, 0))


def _spec(gpus_per_worker: float, precision: object = None, **resources: object) -> SweepSpec:
    data: dict[str, object] = {
        "module": "lightning_modules.classifier:Classifier",
        "datamodule": "lightning_modules.datamodules:MNIST1DDataModule",
        "space": {"module.lr": {"loguniform": [1e-3, 1e-1]}},
        "metric": "val/acc", "mode": "max",
        "search": {"num_samples": 16},
        "resources": {"gpus_per_worker": gpus_per_worker, **resources},
    }
    if precision is not None:
        data["trainer_args"] = {"precision": precision}
    return SweepSpec.model_validate(data)


@pytest.mark.parametrize(("fraction", "per_gpu", "memory"),
                         [(0.5, 2, 0.5), (0.25, 4, 0.25), (0.3333, 3, 1 / 3), (1, 1, None),
                          (0, 1, None)])
def test_a_fraction_packs_trials_and_caps_each_at_its_share_of_memory(
        fraction: float, per_gpu: int, memory: float | None) -> None:
    assert share_error(1, fraction) is None
    assert trials_per_gpu(fraction) == per_gpu
    assert memory_fraction(fraction) == (pytest.approx(memory) if memory else None)


@pytest.mark.parametrize(("workers", "fraction", "says"), [
    (1, 0.3, "0.3 does not divide one GPU"),
    (1, 0.4, "such as 0.3333 or 0.5"),
    (2, 0.5, "NCCL refuses two ranks on one card"),
    (1, 1.5, "each worker trains on one device"),
    (1, 2, "each worker trains on one device"),
])
def test_a_share_that_cannot_work_is_refused_with_the_reason(
        workers: int, fraction: float, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        ResourcesConfig(workers_per_trial=workers, gpus_per_worker=fraction)


def test_concurrency_counts_trials_per_gpu_as_it_counts_them_per_cpu() -> None:
    spec = _spec(0.5, cpus_per_worker=2)
    assert max_concurrent_trials(spec, Hardware(cpus=16, gpus=1)) == 2
    assert max_concurrent_trials(_spec(0.25, cpus_per_worker=2), Hardware(cpus=16, gpus=2)) == 8
    assert max_concurrent_trials(_spec(0.25, cpus_per_worker=2), Hardware(cpus=6, gpus=2)) == 3


@pytest.mark.parametrize(("precision", "gpu", "refused"), [
    ("bf16-mixed", V100, True), ("bf16-true", T4, True), ("bf16-mixed", H100, False),
    ("16-mixed", V100, False), ("32-true", T4, False), ("64-true", T4, False),
    ("transformer-engine", Gpu("A100", (8, 0)), True),
    ("transformer-engine", Gpu("NVIDIA L4", (8, 9)), False),
    ("bf16-mixed", Gpu("some new card", None), False),  # unknown: not refused
])
def test_a_precision_is_checked_against_the_compute_capability_of_the_card(
        precision: str, gpu: Gpu, refused: bool) -> None:
    if not refused:
        check_precision_on("trainer_args.precision", precision, [gpu])
        return
    with pytest.raises(SweepError, match=rf"needs a GPU of compute capability .* {gpu.name}"):
        check_precision_on("trainer_args.precision", precision, [gpu])


def test_a_cluster_is_refused_when_any_of_its_cards_cannot_run_the_precision() -> None:
    resources = {"CPU": 64.0, "GPU": 8.0, "accelerator_type:A100": 1.0,
                 "accelerator_type:T4": 1.0}
    hardware = Hardware.of_cluster(resources)
    assert hardware.gpu_kinds == (Gpu("A100", (8, 0)), Gpu("T4", (7, 5)))
    with pytest.raises(SweepError, match=r"trainer_args.precision: .*'bf16-mixed'.* T4 \(7.5\)"):
        check_hardware(_spec(1, "bf16-mixed"), hardware)
    check_hardware(_spec(1, "16-mixed"), hardware)
    check_hardware(_spec(0, "bf16-mixed"), Hardware.of_cluster({"CPU": 4.0}))  # CPU: no card


def test_a_searched_precision_is_checked_for_every_choice() -> None:
    spec = SweepSpec.model_validate({
        "module": "lightning_modules.classifier:Classifier",
        "datamodule": "lightning_modules.datamodules:MNIST1DDataModule",
        "space": {"trainer.precision": {"choice": ["16-mixed", "bf16-true"]}},
        "metric": "val/acc", "mode": "max",
        "resources": {"gpus_per_worker": 0.5},
    })
    with pytest.raises(SweepError, match=r"space.trainer.precision: precision 'bf16-true'.*V100"):
        check_hardware(spec, Hardware(cpus=8, gpus=1, gpu_kinds=(V100,)))


def test_cluster_gpus_reads_ray_accelerator_types_and_leaves_unknown_ones_unchecked() -> None:
    kinds = cluster_gpus({"accelerator_type:H100": 1.0, "accelerator_type:Future-X": 1.0,
                          "GPU": 16.0, "memory": 1e12})
    assert kinds == (Gpu("Future-X", None), Gpu("H100", (9, 0)))


def test_a_worker_sets_the_float32_matmul_precision_the_sweep_asks_for() -> None:
    import torch

    from tuning.trial.session import TrainSession
    from tuning.trial.worker import _set_up_device

    before = torch.get_float32_matmul_precision()
    try:
        _set_up_device(ResourcesConfig(float32_matmul_precision="high"), TrainSession())
        assert torch.get_float32_matmul_precision() == "high"
        _set_up_device(ResourcesConfig(), TrainSession())  # not given: PyTorch's setting stays
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(before)
