"""What lightsweep's driver adds to Ray Tune's: ``python -m bench.run --bookkeeping``.

Trivial trials (a sleep and ``epochs`` reports, 1 s in all, as Ray's release test of 10,000
trials) run through Ray Tune in one invocation, each run in a process of its own: stock, and with
lightsweep's driver callbacks (the record, Tune's state backup, progress), in ABBA order
(:data:`ABBA`; ``--rounds``). Prints the
wall times against the theoretical time (trials x trial seconds / concurrency), the time the
callbacks took per report for each thousand reports (flat: a report costs the same at the end of
a sweep as at its start), and each driver's peak memory, garbage-collection and CPU time.
"""

from __future__ import annotations

import gc
import multiprocessing
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import workload as w

TRIAL_S = 1.0
CONCURRENCY = 8
BLOCK = 1000  # reports per line of the per-report timing
HOOKS = ("setup", "on_step_begin", "on_step_end", "on_trial_start", "on_trial_complete",
         "on_trial_error", "on_checkpoint", "on_experiment_end")


def _trivial(config: dict[str, Any]) -> None:
    from ray import tune

    if "experiment" in config:  # lightsweep's arm: its trials read the record as run_trial does
        _look_up(config["experiment"], tune.get_context().get_trial_id())
    epochs = config["epochs"]
    for epoch in range(1, epochs + 1):
        time.sleep(TRIAL_S / epochs)
        tune.report({w.METRIC: config["x"] * epoch, "epoch": epoch})


def _look_up(experiment: str, trial_id: str) -> float:
    """A lightsweep trial's look-ups of its own record at its start; returns their seconds."""
    from tuning.record import finished_trial, recorded_epochs
    from tuning.record.location import Location

    started = time.perf_counter()
    location = Location.parse(experiment)
    finished_trial(location, trial_id, {})
    recorded_epochs(location, trial_id)
    return time.perf_counter() - started


def _timed(callbacks: list[Any]) -> Any:
    """One Tune callback that runs ``callbacks`` and times them, per block of reports."""
    from ray.tune import Callback

    class Timed(Callback):
        def __init__(self) -> None:
            self.spent = 0.0
            self.reports = 0
            self.blocks: list[float] = []  # callback seconds per report, each block of reports
            # ... and each callback's share of it: where a growing cost comes from
            self.by_callback: dict[str, list[float]] = {type(c).__name__: [] for c in callbacks}
            self._block_start = 0.0
            self._spent_each = dict.fromkeys(self.by_callback, 0.0)
            self._block_start_each = dict.fromkeys(self.by_callback, 0.0)

        def _call(self, hook: str, **info: Any) -> None:
            for callback in callbacks:
                started = time.perf_counter()
                getattr(callback, hook)(**info)
                spent = time.perf_counter() - started
                self.spent += spent
                self._spent_each[type(callback).__name__] += spent

        def result(self, **info: Any) -> None:
            self._call("on_trial_result", **info)
            self.reports += 1
            if self.reports % BLOCK == 0:
                self.blocks.append((self.spent - self._block_start) / BLOCK)
                self._block_start = self.spent
                for name, spent in self._spent_each.items():
                    self.by_callback[name].append((spent - self._block_start_each[name]) / BLOCK)
                    self._block_start_each[name] = spent

    def forward(hook: str) -> Any:
        return lambda self, **info: self._call(hook, **info)

    # Set after the class: Tune calls hooks by keyword alone, whatever their signatures say.
    for hook in HOOKS:
        setattr(Timed, hook, forward(hook))
    Timed.on_trial_result = Timed.result  # type: ignore[method-assign,assignment]
    return Timed()


class GcTimer:
    """The seconds this process spent in Python's garbage collector, by generation: a driver
    that holds more objects pays more per full collection, outside any callback's time."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]
        self._started = 0.0

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._hook)

    def _hook(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds[info["generation"]] += time.perf_counter() - self._started
            self.collections[info["generation"]] += 1


def _run(with_lightsweep: bool, storage: str, trials: int, epochs: int) -> dict[str, Any]:
    """One Tune run, in a process of its own (its peak memory is its own)."""
    import ray
    from ray import tune

    from tuning.config.spec import SweepSpec
    from tuning.driver.progress import ProgressCallback
    from tuning.driver.tune_state import TuneStateBackup
    from tuning.record import LedgerCallback
    from tuning.record.location import Location

    name = "lightsweep" if with_lightsweep else "tune"
    callbacks: list[Any] = []
    timed = None
    space: dict[str, Any] = {"x": tune.uniform(0, 1), "epochs": epochs}
    if with_lightsweep:
        data = w.sweep_spec_data(storage)
        spec = SweepSpec.model_validate(
            {**data, "scheduler": {**data["scheduler"], "max_epochs": epochs, "grace_period": 1}})
        experiment = Location.parse(Path(storage) / name)
        timed = _timed([LedgerCallback(experiment, spec), TuneStateBackup(Path(storage) / name),
                        ProgressCallback(w.METRIC, w.MODE, trials)])
        callbacks = [timed]
        space["experiment"] = experiment.uri
    # A Ray of its own, even where `ray start` left one running on this machine.
    ray.init(address="local", num_cpus=CONCURRENCY, include_dashboard=False)
    start, cpu_start = time.perf_counter(), time.process_time()
    with GcTimer() as gc_time:
        grid = tune.Tuner(
            _trivial, param_space=space,
            # Reused actors, as in Ray's release test: this measures the driver's loop, not the
            # start-up of a process per trial (about 4 s each here).
            tune_config=tune.TuneConfig(metric=w.METRIC, mode=w.MODE, num_samples=trials,
                                        max_concurrent_trials=CONCURRENCY, reuse_actors=True),
            run_config=tune.RunConfig(name=name, storage_path=storage, callbacks=callbacks,
                                      verbose=0),
        ).fit()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    ray.shutdown()
    # What a trial's look-ups cost once the record holds the whole sweep (the last trial's).
    last = grid[len(grid) - 1].metrics or {}
    look_up = _look_up(space["experiment"], last["trial_id"]) if with_lightsweep else 0.0
    return {
        "wall_s": wall,
        # The driver's own CPU (all its threads; not Ray's processes, not the trials'): with
        # 1-s sleeping trials, what lightsweep adds to it is its whole cost, while the wall
        # time also carries the machine's noise.
        "driver_cpu_s": cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "callback_s_per_report": timed.blocks if timed else [],
        "callback_s_per_report_by_callback": timed.by_callback if timed else {},
        "callback_s": timed.spent if timed else 0.0,
        "gc_s_by_generation": gc_time.seconds, "gc_collections": gc_time.collections,
        "look_up_s": look_up,
    }


def _in_own_process(*args: Any) -> dict[str, Any]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        result: dict[str, Any] = pool.apply(_run, args)
    return result


# The arms' order: stock, lightsweep, lightsweep, stock. Stock Tune's run took 333 s second and
# 288 s first (2,000 x 1, bench/results/bookkeeping_order.json): in ABBA order each arm runs as
# often first as second, and the ratio of their mean walls leaves the order out.
ABBA = (False, True, True, False)


def run_order(rounds: int) -> tuple[bool, ...]:
    """Which arm each run is (True: with lightsweep): ABBA ``rounds`` times, or AB for 0."""
    return ABBA * rounds if rounds else (False, True)


def _arm(runs: list[dict[str, Any]]) -> dict[str, float]:
    """One arm's figures over its runs: mean times, the highest peak memory."""
    return {"wall_s": statistics.mean(r["wall_s"] for r in runs),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "gc_s": statistics.mean(sum(r["gc_s_by_generation"]) for r in runs),
            "driver_cpu_s": statistics.mean(r["driver_cpu_s"] for r in runs)}


def bookkeeping(trials: int, epochs: int, rounds: int = 1) -> dict[str, Any]:
    """Runs both arms in :func:`run_order`, each run in a process and storage of its own,
    prints the figures, and returns them (wall times: each arm's mean)."""
    theoretical = trials * TRIAL_S / CONCURRENCY
    runs: list[tuple[bool, dict[str, Any]]] = []
    for with_lightsweep in run_order(rounds):
        with tempfile.TemporaryDirectory(prefix="lightsweep-bench-") as storage:
            runs.append((with_lightsweep, _in_own_process(with_lightsweep, storage, trials,
                                                          epochs)))
        print(f"{'lightsweep' if with_lightsweep else 'stock'}: {runs[-1][1]['wall_s']:.0f} s")
    stock = _arm([r for ours, r in runs if not ours])
    mine = [r for ours, r in runs if ours]
    ours = {**mine[0], **_arm(mine)}
    reports = trials * epochs
    print(f"{trials} trials x {epochs} reports, {CONCURRENCY} at a time, {TRIAL_S:g} s each")
    ratio = ours["wall_s"] / stock["wall_s"]
    print(f"theoretical {theoretical:.0f} s; stock Tune {stock['wall_s']:.0f} s "
          f"({stock['wall_s'] / theoretical:.2f}x); with lightsweep {ours['wall_s']:.0f} s "
          f"({ours['wall_s'] / theoretical:.2f}x); lightsweep / stock {ratio:.2f}x")
    print(f"lightsweep's callbacks: {ours['callback_s']:.1f} s in all, "
          f"{1000 * ours['callback_s'] / reports:.2f} ms per report")
    for i, per_report in enumerate(ours["callback_s_per_report"]):
        print(f"  reports {i * BLOCK + 1:>6}-{(i + 1) * BLOCK:<6} {1000 * per_report:.2f} ms per report")
    for name, blocks in ours["callback_s_per_report_by_callback"].items():
        if blocks:
            print(f"  {name}: {1000 * blocks[0]:.2f} ms per report in the first {BLOCK}, "
                  f"{1000 * blocks[-1]:.2f} in the last")
    print(f"a trial's look-ups of its record at the end: {1000 * ours['look_up_s']:.1f} ms")
    print(f"driver peak RSS: stock {stock['peak_rss_mb']:.0f} MB, "
          f"with lightsweep {ours['peak_rss_mb']:.0f} MB")
    print(f"driver's garbage collection: stock {stock['gc_s']:.1f} s, "
          f"with lightsweep {ours['gc_s']:.1f} s")
    print(f"driver's CPU: stock {stock['driver_cpu_s']:.0f} s, "
          f"with lightsweep {ours['driver_cpu_s']:.0f} s")
    return {
        "trials": trials, "epochs": epochs, "trial_s": TRIAL_S, "concurrency": CONCURRENCY,
        "theoretical_s": theoretical, "tune_s": stock["wall_s"], "lightsweep_s": ours["wall_s"],
        "lightsweep_vs_tune": ratio,
        "runs": [{"arm": "lightsweep" if with_lightsweep else "tune", "wall_s": r["wall_s"],
                  "driver_cpu_s": r["driver_cpu_s"]} for with_lightsweep, r in runs],
        "callback_s": ours["callback_s"],
        "trial_look_up_ms_at_end": 1000 * ours["look_up_s"],
        "callback_ms_per_report_per_block": [1000 * s for s in ours["callback_s_per_report"]],
        "callback_ms_per_report_per_block_by_callback": {
            name: [1000 * s for s in blocks]
            for name, blocks in ours["callback_s_per_report_by_callback"].items()},
        "driver_peak_rss_mb": {"tune": stock["peak_rss_mb"], "lightsweep": ours["peak_rss_mb"]},
        "driver_gc_s": {"tune": stock["gc_s"], "lightsweep": ours["gc_s"]},
        "driver_cpu_s": {"tune": stock["driver_cpu_s"], "lightsweep": ours["driver_cpu_s"]},
        "gc_by_run": [{"arm": "lightsweep" if with_lightsweep else "tune",
                       "gc_s_by_generation": r["gc_s_by_generation"],
                       "gc_collections": r["gc_collections"]} for with_lightsweep, r in runs],
    }
