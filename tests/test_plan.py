"""One plan, built once: a sweep file is read, merged with its bases and validated into one
SweepSpec before Ray starts; what comes after (the class check, the searcher, the trials and
their workers, the readers of its record) reads it, and nothing parses its space again."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import optuna
import pytest

from tuning.config import space as space_module
from tuning.config.spec import SweepSpec, load_spec
from tuning.contracts import LoopConfig
from tuning.driver.class_check import ClassCheck
from tuning.driver.sweep import build_searcher
from tuning.errors import SweepError

REPO = Path(__file__).parents[1]


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many times a search space was parsed, and SweepSpec validated, since."""
    counts = [0, 0]
    parse = space_module.SearchSpace.parse.__func__  # type: ignore[attr-defined]
    validate = SweepSpec.model_validate.__func__  # type: ignore[attr-defined]

    def counted_parse(cls: type, raw: Any) -> Any:
        counts[0] += 1
        return parse(cls, raw)

    def counted_validate(cls: type, *args: Any, **kwargs: Any) -> Any:
        counts[1] += 1
        return validate(cls, *args, **kwargs)

    monkeypatch.setattr(space_module.SearchSpace, "parse", classmethod(counted_parse))
    monkeypatch.setattr(SweepSpec, "model_validate", classmethod(counted_validate))
    yield counts


def test_a_sweep_is_validated_once_and_its_space_parsed_once_from_file_to_worker(
        parses: list[int]) -> None:
    spec = load_spec(REPO / "search_spaces" / "mnist1d_cnn.yaml",
                     {"resources.native_precisions": False})
    assert parses == [1, 1]

    with ClassCheck(spec, local=True, in_process=True) as check:
        check.wait()
    searcher = build_searcher(spec)
    study = optuna.create_study(direction="maximize")
    configs = []
    for _ in range(3):
        trial = study.ask()
        searcher._space(trial)  # the define-by-run function Ray's OptunaSearch calls
        configs.append({**trial.params, "seed": 0})
    # What Tune hands a trial, and a trial's driver each of its Train workers.
    trial_spec = pickle.loads(cloudpickle.dumps(spec))
    loop = LoopConfig.of(pickle.loads(cloudpickle.dumps(
        LoopConfig(spec=trial_spec, config=configs[0]).for_train())))
    for config in configs:
        loop.spec.trial_args(config)
    assert parses == [1, 1], "something after the driver parsed the sweep again"


def test_an_experiments_record_reads_its_sweep_back_without_checking_it_again(
        parses: list[int]) -> None:
    spec = load_spec(REPO / "search_spaces" / "mnist1d_cnn.yaml")
    stored = spec.model_dump(mode="json")
    parses[:] = [0, 0]

    read = SweepSpec.read(stored)
    assert read == spec and parses == [0, 1]  # the space: only when first used
    assert read.search_space == spec.search_space and parses == [1, 1]


def test_a_bad_space_is_refused_with_the_key_it_names() -> None:
    data = {"module": "pkg.mod:Module", "datamodule": "pkg.mod:Data", "metric": "val/acc",
            "mode": "max", "space": {"model.lr": {"loguniform": [0.1]}}}
    with pytest.raises(SweepError, match=r"space.module.lr: loguniform takes \[low, high\]"):
        SweepSpec.model_validate(data, context={})
    with pytest.raises(SweepError, match=r"space.module.lr: loguniform takes \[low, high\]"):
        SweepSpec.model_validate(data)  # no context: the same check
