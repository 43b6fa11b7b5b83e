"""The benchmark's own measuring: memory of a whole process tree, and the figures it derives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from bench.memory import PeakPss, pss_bytes, tree_pids
from bench.regret import final_regret
from bench.results_file import merge_results
from bench.run import _summary
from bench.search import epochs_to_reach, reports_in_order
from tuning.config.spec import SweepSpec
from tuning.record import EpochRecord, Ledger, TrialRecord


def test_peak_pss_counts_the_memory_of_child_processes() -> None:
    child = subprocess.Popen([sys.executable, "-c",
                              "import time; b = bytearray(300 * 2**20); time.sleep(30)"])
    try:
        deadline = time.monotonic() + 20
        while child.pid not in tree_pids(os.getpid()) or pss_bytes(child.pid) < 300 * 2**20:
            assert time.monotonic() < deadline, "the child never got its memory"
            time.sleep(0.1)
        with PeakPss(os.getpid(), interval_s=0.05) as memory:
            time.sleep(0.5)
    finally:
        child.kill()
        child.wait()
    assert memory.peak >= pss_bytes(os.getpid()) + 300 * 2**20
    assert memory.processes >= 2
    assert sum(memory.by_process.values()) == pytest.approx(memory.peak / 1e9)
    assert memory.by_process["python -c"] >= 300 * 2**20 / 1e9


def test_overhead_is_trial_wall_time_minus_fit_time_as_a_median() -> None:
    trials = [{"wall_s": w, "fit_s": f, "samples": 100.0, "epochs": 2, "value": 0.9,
               "report_gaps_s": gaps} for w, f, gaps in
              [(10.0, 1.0, [0.1]), (20.0, 2.0, [0.3, 0.2]), (5.0, 1.0, [])]]
    summary = _summary({"wall_s": 30.0, "trials": trials})
    assert summary["per_trial_overhead_s"] == pytest.approx(9.0)
    assert summary["report_latency_s"] == pytest.approx(0.2)
    assert summary["throughput_samples_per_s"] == pytest.approx(100.0)
    assert summary["epochs"] == 6


def test_epochs_to_reach_counts_every_trials_epochs_in_report_order() -> None:
    spec = SweepSpec.model_validate({"module": "a.b:C", "datamodule": "a.b:D",
                                     "metric": "val/acc", "mode": "max"})

    def trial(name: str, values_at: list[tuple[float, float]]) -> TrialRecord:
        return TrialRecord(name, history=[
            EpochRecord(epoch=n, metrics={"val/acc": v}, reported_at=t)
            for n, (v, t) in enumerate(values_at, start=1)])

    # Two trials at once: their epochs interleave in time.
    ledger = Ledger(spec, {"a": trial("a", [(0.5, 1.0), (0.7, 3.0), (0.9, 5.0)]),
                           "b": trial("b", [(0.6, 2.0), (0.8, 4.0)])})
    values = reports_in_order(ledger, "val/acc")
    assert values == [0.5, 0.6, 0.7, 0.8, 0.9]
    assert epochs_to_reach(values, 0.8, "max") == 4
    assert epochs_to_reach(values, 0.95, "max") is None
    assert epochs_to_reach([0.9, 0.4], 0.5, "min") == 2


def test_final_regret_is_judged_on_the_returned_trials_true_last_value() -> None:
    curves = {"slow": [0.2, 0.5, 0.95], "fast": [0.7, 0.8, 0.85], "bad": [0.1, 0.2, 0.3]}
    # "fast" ran to the end; "slow" was stopped at epoch 1 (its 0.2 says nothing of its 0.95).
    assert final_regret(curves, [("slow", 1, 0.2), ("fast", 3, 0.85), ("bad", 3, 0.3)]) == (
        pytest.approx(0.95 - 0.85))
    assert final_regret(curves, [("slow", 3, 0.95), ("fast", 3, 0.85)]) == 0.0
    # Nothing ran to the end: the furthest-run trial is what the run returns.
    assert final_regret(curves, [("bad", 2, 0.2), ("fast", 1, 0.7)]) == pytest.approx(0.95 - 0.3)


def test_merged_results_keep_the_other_benchmarks_figures_each_with_the_run_that_made_it(
        tmp_path) -> None:
    from bench.results_file import PROVENANCE_KEY, provenance

    out = tmp_path / "latest.json"
    earlier = {"commit": "0" * 40, "date": "2026-11-30",
               "machine": {"cpu": "an older CPU", "cores": 2, "gpus": []}}
    merge_results(out, {"ratio_vs_ray_recipe": 0.7, "mode": "sweeps"}, run=earlier)
    merge_results(out, {"regret_ratio_pruned_vs_stock": 0.9})
    merged = json.loads(out.read_text())
    runs = merged.pop(PROVENANCE_KEY)
    assert merged == {"ratio_vs_ray_recipe": 0.7, "mode": "sweeps",
                      "regret_ratio_pruned_vs_stock": 0.9}
    assert runs["ratio_vs_ray_recipe"] == runs["mode"] == earlier
    now = runs["regret_ratio_pruned_vs_stock"]
    assert now["commit"] == provenance()["commit"]  # this checkout's (git rev-parse HEAD)
    assert now["machine"]["cores"] == os.cpu_count() and now["machine"]["cpu"]
    assert [p.name for p in tmp_path.iterdir()] == ["latest.json"]


def test_the_bookkeeping_timer_forwards_every_hook_and_times_each_block_of_reports() -> None:
    from bench.bookkeeping import BLOCK, _timed

    calls: list[str] = []

    class Recorder:
        def __getattr__(self, hook: str) -> object:
            return lambda **info: calls.append(hook)

    timed = _timed([Recorder()])
    timed.setup(stop=None)
    for _ in range(2 * BLOCK + 1):
        timed.on_trial_result(iteration=0, trials=[], trial=None, result={})
    timed.on_experiment_end(trials=[])
    assert calls[0] == "setup" and calls[-1] == "on_experiment_end"
    assert calls.count("on_trial_result") == 2 * BLOCK + 1
    assert len(timed.blocks) == 2 and all(b >= 0 for b in timed.blocks)
    assert timed.spent >= sum(timed.blocks) * BLOCK


def _replay_ledger() -> Ledger:
    spec = SweepSpec.model_validate({
        "module": "m:M", "datamodule": "d:D", "metric": ["val/acc", "model/params"],
        "mode": ["max", "min"], "scheduler": {"max_epochs": 4, "grace_period": 1,
                                              "reduction_factor": 2}})

    def trial(trial_id: str, start: float, accs: list[float]) -> TrialRecord:
        return TrialRecord(trial_id, "completed", history=[
            EpochRecord(n, {"val/acc": a, "model/params": 10.0}, reported_at=start + n)
            for n, a in enumerate(accs, start=1)])

    return Ledger(spec, {t.trial_id: t for t in [
        trial("first", 0.0, [0.8, 0.85, 0.9, 0.9]), trial("small", 10.0, [0.5, 0.6, 0.7, 0.7]),
        trial("late", 20.0, [0.9, 0.9, 0.95, 0.95])]})


def test_single_metric_asha_is_replayed_in_the_order_reports_arrived() -> None:
    from bench.pareto import single_metric_asha_stops

    # At rung 1: "small" (0.5) arrives after "first" (0.8), below the median cutoff: stopped;
    # "late" (0.9) arrives third, above it. Rung 2 alike: "small" (0.6) below.
    ledger = _replay_ledger()
    assert single_metric_asha_stops(ledger, ["small", "late", "first"]) == 1
    assert single_metric_asha_stops(ledger, ["late"]) == 0


def test_random_search_is_cut_at_the_epochs_the_sweep_trained() -> None:
    from bench.pareto import first_epochs

    ledger = _replay_ledger()
    assert list(first_epochs(ledger, 5).trials) == ["first", "small"]  # 4 epochs, then 8
    assert list(first_epochs(ledger, 4).trials) == ["first"]


def test_each_bookkeeping_arm_runs_as_often_first_as_second() -> None:
    from bench.bookkeeping import run_order

    order = run_order(2)
    assert order.count(True) == order.count(False) == 4
    pairs = list(zip(order[::2], order[1::2], strict=True))
    assert pairs.count((False, True)) == pairs.count((True, False)) == 2
    assert run_order(0) == (False, True)
