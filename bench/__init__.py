"""Benchmarks: lightsweep against Ray's documented recipe, Tune without Train, Optuna alone and
plain Lightning, on the same workload in one run. ``make bench`` (or ``python -m bench.run``)."""
