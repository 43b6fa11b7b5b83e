"""The messages every stopped trial makes Ray log are dropped; everything else comes through."""

from __future__ import annotations

import importlib
import logging

import pytest

from tuning._internals import probe
from tuning.driver.sweep import runtime_env
from tuning.trial.ray_logs import EXPECTED_MESSAGES, drop_expected_messages


def test_expected_messages_are_dropped_and_others_kept(caplog: pytest.LogCaptureFixture) -> None:
    drop_expected_messages()
    drop_expected_messages()  # a second call adds no second filter
    for name, prefixes in EXPECTED_MESSAGES.items():
        logger = logging.getLogger(name)
        assert len(logger.filters) == 1
        with caplog.at_level(logging.WARNING, logger=name):
            caplog.clear()
            logger.warning(prefixes[0] + " (details)")
            logger.warning("Something else went wrong")
        assert [r.getMessage() for r in caplog.records] == ["Something else went wrong"]


def test_the_loggers_named_are_rays_own() -> None:
    # If Ray moves these modules, the names here would silently filter nothing.
    for name in EXPECTED_MESSAGES:
        if "placement_group_cleaner" in name and not probe.applies("cleaner-per-process"):
            continue  # a Ray before Train's cleaners
        importlib.import_module(name)


@pytest.mark.parametrize("address", [None, "10.0.0.1:6379"])
def test_every_ray_process_of_the_sweep_runs_the_filter(address: str | None) -> None:
    module, _, function = runtime_env(address)["worker_process_setup_hook"].rpartition(".")
    assert getattr(importlib.import_module(module), function) is drop_expected_messages
