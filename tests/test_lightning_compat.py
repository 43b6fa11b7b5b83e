"""Ray's Lightning strategy and environment exist for both Lightning namespaces."""

from __future__ import annotations

import lightning.pytorch as lp
import pytest
from ray.train.lightning import RayDDPStrategy, RayLightningEnvironment

from tuning.lightning_compat import ray_lightning

ptl = pytest.importorskip("pytorch_lightning")


def test_lightning_pytorch_uses_rays_own_classes() -> None:
    strategy, environment, callback = ray_lightning(lp)
    assert strategy is RayDDPStrategy and environment is RayLightningEnvironment
    assert issubclass(callback, lp.Callback)


def test_pytorch_lightning_gets_the_same_behaviour_on_its_own_bases() -> None:
    strategy, environment, callback = ray_lightning(ptl)
    assert issubclass(strategy, ptl.strategies.DDPStrategy)
    assert not issubclass(strategy, lp.strategies.DDPStrategy)
    assert issubclass(callback, ptl.Callback)
    # Ray's own behaviour, not a re-implementation:
    assert strategy.root_device is RayDDPStrategy.root_device
    assert environment.global_rank is RayLightningEnvironment.global_rank
    assert strategy().distributed_sampler_kwargs.keys() == {"num_replicas", "rank"}
