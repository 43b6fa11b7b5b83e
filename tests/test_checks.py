"""Checks against the user's classes and the hardware, before any trial starts."""

from __future__ import annotations

import pytest

from tests.conftest import SweepWriter
from tuning.config.checks import Hardware, check_spec, max_concurrent_trials, normalize_precision
from tuning.config.spec import load_spec
from tuning.errors import SweepError

TWO_CPUS = Hardware(cpus=2, gpus=0)


def _check(path, hardware=TWO_CPUS) -> None:
    check_spec(load_spec(path), hardware)


def test_base_sweep_passes(write_sweep: SweepWriter) -> None:
    _check(write_sweep())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"module": "no_such_pkg.mod:X"}, r"module: cannot import 'no_such_pkg.mod'"),
        ({"module": "lightning_modules.classifier:Nope"}, r"module: .* has no 'Nope'"),
        ({"module": "lightning_modules.datamodules:DigitsDataModule"},
         r"module: .* is not a LightningModule"),
        ({"datamodule": "lightning_modules.classifier:Classifier"},
         r"datamodule: .* is not a LightningDataModule"),
        ({"module_args": {"arch": "mlp", "input_shape": [8, 8], "widht": 3}},
         r"module_args.widht: Classifier.__init__ takes no argument 'widht'"),
        ({"space": {"module.learning_rate": {"uniform": [0.1, 0.2]}}},
         r"space.module.learning_rate: Classifier.__init__ takes no argument"),
        ({"datamodule_args": {"shuffle": True}},
         r"datamodule_args.shuffle: DigitsDataModule.__init__ takes no argument"),
        ({"trainer_args": {"max_epochz": 3}}, r"trainer_args.max_epochz: Trainer.__init__"),
        ({"trainer_args": {"max_epochs": 3}},
         r"trainer_args.max_epochs \(3\) differs from scheduler.max_epochs \(4\)"),
        ({"trainer_args": {"devices": 2}}, r"Fix: set resources.workers_per_trial"),
    ],
)
def test_class_and_argument_errors(write_sweep: SweepWriter, changes: dict, message: str) -> None:
    with pytest.raises(SweepError, match=message):
        _check(write_sweep(**changes))


def test_required_init_argument_must_be_given(write_sweep: SweepWriter, tmp_path, monkeypatch):
    (tmp_path / "needs_arg.py").write_text(
        "import lightning.pytorch as pl\n"
        "class M(pl.LightningModule):\n"
        "    def __init__(self, hidden, lr=0.1):\n"
        "        super().__init__()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(SweepError, match=r"module_args: M.__init__ needs hidden"):
        _check(write_sweep(module="needs_arg:M", module_args={}))


@pytest.mark.parametrize(
    ("batch", "workers", "message"),
    [
        ({"choice": [32, 0]}, 1, "positive integer, got 0"),
        (-8, 1, "positive integer, got -8"),
        ({"uniform": [16, 64]}, 1, "must be an integer"),
        ({"choice": [32, 48]}, 2, None),
        ({"choice": [32, 50]}, 4, r"global batch size 50 does not divide evenly over "
                                  r"resources.workers_per_trial=4"),
        ({"int": [30, 40], "step": 10}, 4, r"global batch size 30 .*=4"),
    ],
)
def test_global_batch_size(write_sweep: SweepWriter, batch, workers: int, message) -> None:
    path = write_sweep(space={"datamodule.batch_size": batch},
                       resources={"workers_per_trial": workers})
    hardware = Hardware(cpus=8, gpus=0)
    if message is None:
        _check(path, hardware)
    else:
        with pytest.raises(SweepError, match=rf"space.datamodule.batch_size: .*{message}"):
            _check(path, hardware)


def test_fixed_batch_size_is_checked_too(write_sweep: SweepWriter) -> None:
    path = write_sweep(space={}, datamodule_args={"batch_size": 33},
                       resources={"workers_per_trial": 2})
    with pytest.raises(SweepError, match=r"datamodule_args.batch_size: global batch size 33"):
        _check(path)


@pytest.mark.parametrize(
    ("precisions", "message"),
    [
        (["32-true", "16-mixed"], r"'16-mixed' cannot run on CPU .*silently run 16-mixed as "
                                  r"bf16-mixed"),
        (["32-true", "fp8"], r"unknown precision 'fp8'"),
        (["32", "32-true"], r"'32' and '32-true' are the same precision"),
    ],
)
def test_precision_checked_against_accelerator(write_sweep, precisions, message) -> None:
    with pytest.raises(SweepError, match=rf"trainer.precision: .*{message}"):
        _check(write_sweep(space={"trainer.precision": {"choice": precisions}}))


def test_cpu_precisions_pass_and_gpu_allows_16_mixed(write_sweep: SweepWriter) -> None:
    _check(write_sweep(space={"trainer.precision": {"choice": ["32-true", "bf16-mixed"]}}))
    _check(
        write_sweep(space={"trainer.precision": {"choice": ["32-true", "16-mixed"]}},
                    resources={"gpus_per_worker": 1}),
        Hardware(cpus=2, gpus=1),
    )
    assert normalize_precision(16) == "16-mixed"
    assert normalize_precision("bf16") == "bf16-mixed"


def test_hardware_that_cannot_host_a_trial_is_refused(write_sweep: SweepWriter) -> None:
    with pytest.raises(SweepError, match=r"resources: a trial needs 4 CPUs .* only 2"):
        _check(write_sweep(resources={"workers_per_trial": 2, "cpus_per_worker": 2}))
    with pytest.raises(SweepError, match=r"resources.gpus_per_worker: a trial needs 1 GPUs"):
        _check(write_sweep(resources={"gpus_per_worker": 1}))


@pytest.mark.parametrize(
    ("resources", "num_samples", "expected"),
    [
        ({"workers_per_trial": 1}, 8, 2),
        ({"workers_per_trial": 2}, 8, 1),
        ({"workers_per_trial": 1, "max_concurrent": 1}, 8, 1),
        ({"workers_per_trial": 1, "max_concurrent": 5}, 8, 2),  # never more than fit
        ({"workers_per_trial": 1}, 1, 1),
        ({"workers_per_trial": 1, "cpus_per_worker": 0.5}, 8, 4),
    ],
)
def test_concurrency_never_exceeds_what_fits(write_sweep, resources, num_samples, expected):
    spec = load_spec(write_sweep(resources=resources,
                                 search={"num_samples": num_samples, "seed": 0}))
    assert max_concurrent_trials(spec, TWO_CPUS) == expected


def test_gpu_concurrency_is_bounded_by_gpus(write_sweep: SweepWriter) -> None:
    spec = load_spec(write_sweep(resources={"workers_per_trial": 2, "gpus_per_worker": 1},
                                 search={"num_samples": 8, "seed": 0}))
    assert max_concurrent_trials(spec, Hardware(cpus=64, gpus=4)) == 2


@pytest.mark.parametrize(
    ("callbacks", "message"),
    [
        ([{"EarlyStoping": {"monitor": "val/loss"}}],
         r"callbacks\[0\]\.EarlyStoping: lightning\.pytorch\.callbacks has no 'EarlyStoping'. "
         r"Fix: use one of .*EarlyStopping"),
        ([{"LearningRateMonitor": None}, {"EarlyStopping": {"monitor": "val/acc", "patiense": 3}}],
         r"callbacks\[1\]\.EarlyStopping: got an unexpected keyword argument 'patiense'"),
        ([{"no_such_pkg.mod:Callback": {}}], r"callbacks\[0\]\.no_such_pkg\.mod:Callback: cannot "
         r"import"),
    ],
)
def test_callbacks_are_checked_by_name_and_arguments(
    write_sweep: SweepWriter, callbacks: list, message: str
) -> None:
    with pytest.raises(SweepError, match=message):
        _check(write_sweep(callbacks=callbacks, wandb={"enabled": True}))  # a logger for the LR monitor


def test_callbacks_are_listed_apart_from_trainer_args(write_sweep: SweepWriter) -> None:
    _check(write_sweep(callbacks=[{"EarlyStopping": {"monitor": "val/acc", "mode": "max"}},
                                  {"LearningRateMonitor": None},
                                  {"tests.user_modules:EpochCounter": {}}],
                       wandb={"enabled": True}))
    with pytest.raises(SweepError, match=r"trainer_args\.callbacks: .*Fix: list them under "
                                         r"callbacks:"):
        _check(write_sweep(trainer_args={"callbacks": []}))
    with pytest.raises(SweepError, match=r"callbacks\[0\]\.LearningRateMonitor: logs to a logger, "
                                         r"and this sweep has none"):
        _check(write_sweep(callbacks=[{"LearningRateMonitor": None}], wandb={"enabled": False}))
    with pytest.raises(SweepError, match=r"callbacks: .* names 2 classes; fix: write each "
                                         r"callback as its own entry"):
        load_spec(write_sweep(callbacks=[{"EarlyStopping": {}, "LearningRateMonitor": {}}]))
