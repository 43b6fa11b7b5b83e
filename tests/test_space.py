"""Search-space distributions and their Ray Tune translation."""

from __future__ import annotations

import pytest
from ray.tune.search.sample import Categorical, Float, Integer

from tuning.config.space import Choice, IntRange, LogUniform, SearchSpace, split_key
from tuning.errors import SweepError


def test_each_distribution_maps_to_its_tune_domain() -> None:
    space = SearchSpace.parse({
        "module.lr": {"loguniform": [1e-4, 1e-1]},
        "module.dropout": {"uniform": [0.0, 0.5]},
        "module.width": {"int": [16, 64], "step": 16},
        "datamodule.batch_size": {"choice": [32, 64]},
        "trainer.max_steps": 100,
    })
    tune_space = space.to_tune()
    assert set(tune_space) == {"module.lr", "module.dropout", "module.width", "datamodule.batch_size"}
    assert isinstance(tune_space["module.lr"], Float)
    assert isinstance(tune_space["module.width"], Integer)
    assert isinstance(tune_space["datamodule.batch_size"], Categorical)
    assert space.fixed == {"trainer.max_steps": 100}


def test_int_range_is_inclusive_of_high() -> None:
    dist = SearchSpace.parse({"module.width": {"int": [16, 64], "step": 16}}).searched["module.width"]
    assert dist == IntRange(16, 64, 16)
    assert dist.finite_values() == [16, 32, 48, 64]
    domain = dist.to_tune()
    samples = {domain.sample() for _ in range(300)}
    assert samples == {16, 32, 48, 64}


def test_loguniform_samples_stay_in_bounds() -> None:
    domain = LogUniform(1e-4, 1e-1).to_tune()
    assert all(1e-4 <= domain.sample() <= 1e-1 for _ in range(200))


def test_choice_keeps_order_and_values() -> None:
    assert Choice((3, "a")).finite_values() == [3, "a"]


@pytest.mark.parametrize("key", ["lr", "modle.lr", "module.", "module.not-an-arg"])
def test_split_key_rejects_unroutable_keys(key: str) -> None:
    with pytest.raises(SweepError, match="unknown prefix"):
        split_key(key)


def test_keys_for_route_covers_searched_and_fixed() -> None:
    space = SearchSpace.parse({"module.lr": {"uniform": [0, 1]}, "module.depth": 2,
                               "datamodule.batch_size": 8})
    assert space.keys_for("module") == {"lr": "module.lr", "depth": "module.depth"}
    assert space.possible_values("datamodule.batch_size") == [8]
    assert space.possible_values("module.lr") is None
