"""A CPU sweep over bfloat16 is told, at launch, when this machine's CPU emulates bfloat16."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import BASE_SWEEP, SweepWriter
from tuning.config.cpu_precision import SLOW_RATIO, bf16_slowdown, slow_bf16_warning
from tuning.config.spec import load_spec
from tuning.driver.class_check import ClassCheck


def test_the_warning_names_the_field_the_slow_precisions_the_slowdown_and_the_fix() -> None:
    warning = slow_bf16_warning("trainer.precision", ["32-true", "bf16-mixed"], 14.2)
    assert warning is not None
    assert warning.startswith("trainer.precision: bf16-mixed runs 14x slower than 32-true")
    assert "Fix: leave bfloat16 out of trainer.precision" in warning
    # Native bfloat16 (about as fast as float32), or no bfloat16 swept: nothing to say.
    assert slow_bf16_warning("trainer.precision", ["32-true", "bf16-mixed"], 1.1) is None
    assert slow_bf16_warning("trainer.precision", ["32-true", "64-true"], 14.2) is None


def test_the_measured_slowdown_is_a_ratio_of_real_passes() -> None:
    slowdown = bf16_slowdown(repeats=5)
    assert 0.05 < slowdown < 100


@pytest.mark.parametrize("in_process", [False, True])
def test_launch_warns_of_a_bf16_sweep_exactly_where_this_cpu_emulates_bf16(
        write_sweep: SweepWriter, in_process: bool, caplog: pytest.LogCaptureFixture) -> None:
    space = {**BASE_SWEEP["space"], "trainer.precision": {"choice": ["32-true", "bf16-mixed"]}}
    spec = load_spec(write_sweep(space=space))
    with caplog.at_level(logging.WARNING), ClassCheck(spec, local=True,
                                                      in_process=in_process) as check:
        check.wait()
    said = [r.getMessage() for r in caplog.records if "bf16-mixed runs" in r.getMessage()]
    # This machine's own figure decides (6.5x on an AVX2-only CPU, about 1x with AVX-512 BF16).
    assert bool(said) == (bf16_slowdown() >= SLOW_RATIO), (said, bf16_slowdown())
    # A sweep in float32 alone measures nothing and says nothing.
    caplog.clear()
    with caplog.at_level(logging.WARNING), ClassCheck(load_spec(write_sweep()), local=True,
                                                      in_process=in_process) as check:
        check.wait()
    assert not [r for r in caplog.records if "bfloat16" in r.getMessage()]


@pytest.mark.parametrize("in_process", [False, True])
def test_a_native_precisions_sweep_finds_what_this_cpu_emulates_instead_of_warning(
        write_sweep: SweepWriter, in_process: bool, caplog: pytest.LogCaptureFixture) -> None:
    space = {**BASE_SWEEP["space"], "trainer.precision": {"choice": ["32-true", "bf16-mixed"]}}
    spec = load_spec(write_sweep(space=space, resources={"native_precisions": True}))
    with caplog.at_level(logging.WARNING), ClassCheck(spec, local=True,
                                                      in_process=in_process) as check:
        check.wait()
    assert not [r for r in caplog.records if "bf16-mixed runs" in r.getMessage()]
    emulated, slowdown = check.emulated
    # This machine's own figure decides, as for the warning.
    assert emulated == (["bf16-mixed"] if slowdown >= SLOW_RATIO else [])


def test_the_default_sweep_searches_only_the_precisions_this_cpu_runs_natively(
        caplog: pytest.LogCaptureFixture) -> None:
    from tests.conftest import REPO
    from tuning.driver.sweep import native_precisions

    spec = load_spec(REPO / "search_spaces" / "mnist1d_cnn.yaml")
    assert spec.resources.native_precisions
    with caplog.at_level(logging.INFO):
        emulating = native_precisions(spec, ["bf16-mixed"], 10.4)  # an AVX2-only CPU
    assert emulating.space["trainer.precision"] == "32-true"  # fixed: one value left
    assert "trainer.precision" not in emulating.search_space.searched
    [said] = [r.getMessage() for r in caplog.records]
    assert said == ("trainer.precision: this machine's CPU runs bf16-mixed 10x slower than "
                    "32-true (no native bfloat16), so the sweep searches 32-true "
                    "(resources.native_precisions)")
    # A CPU with native bfloat16 (or a GPU sweep): searched as written.
    assert native_precisions(spec, [], 1.1) is spec
    # The rest of the sweep untouched.
    assert list(emulating.search_space.searched) == [k for k in spec.search_space.searched
                                                     if k != "trainer.precision"]
