"""The keys Ray Tune adds to every result (iteration counters, times, host), which are not metrics.

Private: ``ray.tune.result.AUTO_RESULT_KEYS``. Public way: none; where Ray moves it, the list as
Ray 2.60 has it stands in.
"""

from __future__ import annotations

from tuning._internals.probe import enabled, layer

LAYER = "tune-result-keys"
TIME_THIS_ITER_S = "time_this_iter_s"  # each result's seconds since the one before
_AS_IN_RAY_2_60 = ("training_iteration", "time_total_s", "episodes_total", "timesteps_total",
                   "node_ip", "hostname", "pid", "time_this_iter_s", "timestamp", "date",
                   "time_since_restore", "timesteps_since_restore", "iterations_since_restore",
                   "config", "checkpoint_dir_name")


@layer(LAYER, "reading Tune's own result keys from Ray",
       "the keys as Ray 2.60 names them stand in", execution=False)
def _probe() -> None:
    from ray.tune.result import AUTO_RESULT_KEYS

    del AUTO_RESULT_KEYS


def auto_result_keys() -> tuple[str, ...]:
    if not enabled(LAYER):
        return _AS_IN_RAY_2_60
    from ray.tune.result import AUTO_RESULT_KEYS

    return tuple(AUTO_RESULT_KEYS)
