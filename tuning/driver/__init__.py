"""The sweep's driver: launch and resume, the Tuner, Ray and its runtime environment, the
storage check, the searcher, warm starts, Tune's saved state and the console's progress.

Runs in the process of ``run_tune.py launch``/``resume`` (or a Ray job's entrypoint).
"""
