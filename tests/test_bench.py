"""The benchmark's own measuring: memory of a whole process tree, and the figures it derives."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bench.memory import PeakPss, pss_bytes, tree_pids
from bench.run import _summary


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
