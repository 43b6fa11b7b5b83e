"""The layers over private parts (tuning._internals): each made to fail by removing the private
part it uses is off, with one warning naming what happens instead, and what uses it goes Ray's
documented way; stock-Ray mode turns every execution layer off; readers import no Ray."""

from __future__ import annotations

import importlib
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tuning._internals import probe

# Each layer, and a private part it uses: removing that part must turn the layer off.
REMOVED = {
    "lazy-torch-config": None,  # read from Ray's source (importing it imports torch): see below
    "no-dataset-manager": ("ray.train.v2._internal.callbacks.datasets", "DatasetsCallback"),
    "controller-in-trial": ("ray.train.v2._internal.execution.controller", "TrainController"),
    "sync-actor-per-process": ("ray.train.v2._internal.execution.worker_group.state",
                               "_shutdown_sync_actor"),
    "cleaner-per-process": ("ray.train.v2._internal.callbacks.placement_group_callback",
                            "PlacementGroupCleanerCallback"),
    "no-autoscaler-requests": ("ray.train.v2._internal.execution.scaling_policy.fixed",
                               "FixedScalingPolicy"),
    "driver-removes-placement-groups": ("ray._private.state", "state"),
    "workers-started-ahead": ("ray.tune.execution.class_cache", "ENV_VARS_TO_PROPAGATE"),
    "worker-deaths": ("ray.train.v2._internal.exceptions", "WorkerHealthCheckFailedError"),
    "tune-state-matching": ("ray.tune.experiment", "Trial"),
    "optuna-search-internals": ("ray.tune.search.optuna", "OptunaSearch._setup_study"),
    "pbt-over-train": ("ray.tune.schedulers.pbt", "_PBTTrialState"),
    "lightning-other-namespace": None,  # read from Ray's source, as lazy-torch-config
    "trial-process-on-head": None,  # a resource of a running cluster: see below
    "wandb-flush": None,  # a field of W&B's settings: see below
    "tune-result-keys": ("ray.tune.result", "AUTO_RESULT_KEYS"),
    "asha-earlier-trials": ("ray.tune.schedulers.async_hyperband", "_Bracket"),
}


@pytest.fixture(autouse=True)
def fresh_verdicts(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(probe.STOCK_RAY_ENV, raising=False)
    monkeypatch.delenv(probe.OFF_ENV, raising=False)
    probe.forget()
    yield
    probe.forget()


def test_every_layer_is_on_with_the_tested_releases(caplog: pytest.LogCaptureFixture) -> None:
    assert set(probe.layers()) == set(REMOVED)
    with caplog.at_level(logging.WARNING):
        off = probe.probe_all()
    # On the oldest Ray of the range, the layers for parts it does not have yet, unwarned.
    assert off == [name for name in probe.layers() if not probe.applies(name)]
    assert not caplog.records


@pytest.mark.parametrize("name", sorted(REMOVED))
def test_a_layer_whose_private_part_is_gone_is_off_with_one_warning(
        name: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    if not probe.applies(name):
        pytest.skip(f"the installed Ray has nothing for {name} to change")
    removed = REMOVED[name]
    if removed is not None:
        module, path = removed
        owner: object = importlib.import_module(module)
        *through, attribute = path.split(".")
        for step in through:
            owner = getattr(owner, step)
        monkeypatch.delattr(owner, attribute)
    elif name in ("lazy-torch-config", "lightning-other-namespace"):
        monkeypatch.setattr(importlib.util, "find_spec", lambda _: None)  # no such Ray package
    elif name == "wandb-flush":
        import wandb

        monkeypatch.delitem(wandb.Settings.model_fields, "x_transaction_log_flush_interval")
    else:
        import ray

        monkeypatch.setattr(ray, "is_initialized", lambda: True)
        monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    layer = probe.layers()[name]
    with caplog.at_level(logging.WARNING, logger=probe.__name__):
        assert not probe.enabled(name)
        assert not probe.enabled(name)  # asked again: no second warning
    assert len(caplog.records) == 1
    said = caplog.records[0].getMessage()
    assert said.startswith(layer.does) and said.endswith(layer.instead)


def test_what_uses_a_layer_that_is_off_goes_rays_documented_way(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import ray.train
    from ray.tune.search.optuna import OptunaSearch

    from tests.conftest import REPO
    from tuning._internals import autoscaler, failures, head_node, tune_results, wandb
    from tuning._internals.trainer import LayeredTorchTrainer
    from tuning.config.spec import load_spec
    from tuning.driver.searcher import TruthfulOptunaSearch
    from tuning.driver.sweep import build_searcher

    spec = load_spec(REPO / "search_spaces" / "smoke.yaml")
    assert type(build_searcher(spec)) is TruthfulOptunaSearch
    for name in probe.layers():
        monkeypatch.setitem(probe._VERDICTS, name, "off in a test")
    assert type(build_searcher(spec)) is OptunaSearch  # Ray's own
    trainer = LayeredTorchTrainer(print, scaling_config=ray.train.ScalingConfig(num_workers=1))
    callbacks = trainer._create_default_callbacks()
    if probe.applies("no-dataset-manager"):
        from ray.train.v2._internal.callbacks.datasets import DatasetsCallback

        assert any(isinstance(c, DatasetsCallback) for c in callbacks)  # Train's manager kept
    assert trainer.placement_groups_removed_by == "cleaner per run"
    assert type(trainer.backend_config).__name__ == "TorchConfig"
    kwargs = {"scaling_policy": object()}
    monkeypatch.setenv(autoscaler.AUTOSCALER_REQUESTS_ENV, "0")
    assert autoscaler.without_autoscaler(kwargs) is kwargs
    assert failures.worker_deaths(RuntimeError()) == []
    assert head_node.head_resources() == {}
    assert wandb.flush_settings(1.0) == {}
    assert "training_iteration" in tune_results.auto_result_keys()


def test_stock_ray_turns_every_execution_layer_off_without_a_warning(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from ray.train.torch import TorchTrainer

    from tuning._internals.trainer import trainer_class

    monkeypatch.setenv(probe.STOCK_RAY_ENV, "1")
    with caplog.at_level(logging.WARNING):
        off = probe.probe_all()
    assert not caplog.records
    assert set(off) == {name for name, layer in probe.layers().items() if layer.execution}
    assert {"controller-in-trial", "workers-started-ahead",
            "driver-removes-placement-groups"} <= set(off)
    assert trainer_class() is TorchTrainer


def test_a_layer_the_sweeps_driver_found_off_is_off_in_its_processes_without_a_warning(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(probe.OFF_ENV, "controller-in-trial,worker-deaths")
    with caplog.at_level(logging.WARNING):
        assert not probe.enabled("controller-in-trial")
        assert not probe.enabled("worker-deaths")
        assert probe.enabled("tune-result-keys")
    assert not caplog.records


def test_a_layer_is_off_without_a_warning_on_a_ray_older_than_what_it_changes(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from importlib import metadata

    real = metadata.version
    monkeypatch.setattr(metadata, "version",
                        lambda name: "2.52.1" if name == "ray" else real(name))
    with caplog.at_level(logging.WARNING):
        assert not probe.enabled("no-dataset-manager")  # Train 2.52 starts no dataset manager
        assert not probe.enabled("cleaner-per-process")  # nor a cleaner per run
    assert not caplog.records


def _fresh_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


def test_probing_every_layer_imports_neither_torch_nor_lightning() -> None:
    # The sweep's driver probes them all, and never imports either (its class check runs in a
    # process of its own only while Lightning is not imported here).
    code = ("import sys; from tuning._internals import probe; off = probe.probe_all(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'torch', 'lightning', 'pytorch_lightning'}))")
    assert _fresh_python(code) == "[]"


def test_reading_an_experiment_imports_no_ray() -> None:
    code = ("import sys, tuning.cli, tuning.read.results, tuning.read.report, tuning.record; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'ray', 'optuna', 'torch'}))")
    assert _fresh_python(code) == "[]"


def test_launch_says_which_versions_are_untested_before_ray_is_imported() -> None:
    # The driver's modules made unimportable: the version line must come first all the same.
    code = ("import sys, logging; sys.modules['tuning.driver.sweep'] = None\n"
            "import tuning.driver.versions as v\n"
            "v.untested_versions = lambda: ['ray 9.9.9 (tested: <2.61,>=2.52)']\n"
            "from tuning.cli import main\n"
            "try:\n"
            "    main(['launch', 'search_spaces/smoke.yaml'])\n"
            "except ImportError:\n"
            "    print('then the import failed')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "untested versions: ray 9.9.9" in done.stderr
    assert done.stdout.strip() == "then the import failed"


def test_a_layer_that_asks_the_running_ray_is_probed_at_its_first_use_once_ray_is_up(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import ray

    from tuning._internals.head_node import head_resources

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    assert "trial-process-on-head" not in probe.probe_all()  # no cluster to ask yet: not probed
    # Joined a cluster without the head's resource: the trials' processes go anywhere, said once.
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 8.0})
    with caplog.at_level(logging.WARNING, logger=probe.__name__):
        assert head_resources() == {} and head_resources() == {}
    assert len(caplog.records) == 1
