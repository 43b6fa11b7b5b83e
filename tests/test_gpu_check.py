"""bench/gpu_check.py: what it asks of a GPU run, checked without one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.gpu_check import (
    HUNGRY,
    MODEST,
    PRECISIONS,
    REPO,
    TRIALS,
    _failed_alone,
    _overlap,
    _steady_epoch_s,
    failures,
    oom_sweep_data,
    sweep_data,
)
from tuning.config.spec import SweepSpec
from tuning.driver.sweep import build_searcher


def test_the_check_sweep_tries_every_precision_in_its_four_trials(tmp_path: Path) -> None:
    searcher = build_searcher(SweepSpec.model_validate(sweep_data(tmp_path)))
    asked = [searcher.suggest(f"trial{i}")["trainer.precision"] for i in range(TRIALS)]
    assert set(asked) == set(PRECISIONS)


def test_the_out_of_memory_sweep_runs_one_hungry_and_one_modest_trial(tmp_path: Path) -> None:
    searcher = build_searcher(SweepSpec.model_validate(oom_sweep_data(tmp_path)))
    shares = {searcher.suggest(f"trial{i}")["module.card_share"] for i in range(2)}
    assert shares == {HUNGRY, MODEST}
    assert HUNGRY > 0.5 and HUNGRY + MODEST < 1  # over its half, though both would fit the card


@pytest.mark.parametrize(("hungry", "modest", "alone"), [
    (("errored", "OutOfMemoryError: CUDA out of memory."), ("completed", None), True),
    (("errored", "OutOfMemoryError: CUDA out of memory."), ("errored", "OutOfMemoryError"), False),
    (("completed", None), ("completed", None), False),  # the cap did not hold
    (("errored", "ValueError: bad"), ("completed", None), False),
])
def test_failed_alone_needs_the_hungry_trial_out_of_memory_and_its_neighbour_done(
        hungry: tuple[str, str | None], modest: tuple[str, str | None], alone: bool) -> None:
    oom = {str(HUNGRY): {"status": hungry[0], "error": hungry[1]},
           str(MODEST): {"status": modest[0], "error": modest[1]}}
    assert _failed_alone(oom) is alone


def test_epoch_seconds_are_taken_over_the_epochs_after_the_first_together() -> None:
    # Reports that reached Tune in a batch: 0.19 s, then 0.01 s, are two epochs of 0.1 s.
    assert _steady_epoch_s([30.0, 0.19, 0.01, 0.1]) == pytest.approx(0.1)
    assert _steady_epoch_s([2.0]) == 2.0


def test_overlap_counts_the_most_trials_running_at_one_moment() -> None:
    assert _overlap([(0, 10), (5, 15), (20, 30)]) == 2
    assert _overlap([(0, 1), (1, 2), (2, 3)]) == 1  # one ends as the next starts
    assert _overlap([]) == 0


def _figures(**changes: object) -> dict[str, object]:
    figures: dict[str, object] = {
        "max_trials_at_once_on_one_gpu": 2, "precisions_run": sorted(PRECISIONS),
        "precisions_as_asked": True, "oom_failed_alone": True, "oom_isolation": {},
        "best": {"reloaded_val_acc": 0.9, "logged_val_acc": 0.905},
    }
    return {**figures, **changes}


@pytest.mark.parametrize(("changes", "says"), [
    ({}, None),
    ({"max_trials_at_once_on_one_gpu": 1}, "no two trials ran on the GPU at once"),
    ({"precisions_run": ["32-true"]}, "precisions run"),
    ({"precisions_as_asked": False}, "another precision"),
    ({"oom_failed_alone": False}, "out of memory, not failed alone"),
    ({"best": {"reloaded_val_acc": 0.5, "logged_val_acc": 0.9}}, "loaded best model scores"),
])
def test_failures_name_what_a_gpu_run_did_not_show(changes: dict[str, object],
                                                    says: str | None) -> None:
    problems = failures(_figures(**changes))
    assert (problems == []) if says is None else (says in problems[0])


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_a_gpu_the_check_says_it_skipped_and_succeeds(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    done = subprocess.run([sys.executable, "-m", "bench.gpu_check", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "no GPU: skipped" in done.stdout
    assert not out.exists()
