"""Imports torch and Lightning at interpreter start-up in a process whose environment sets
``LIGHTSWEEP_WARM_IMPORTS`` (a worker started ahead for :mod:`bench.warm_pool`, whose
``PYTHONPATH`` names this directory). Any other process that finds this file does nothing."""

import os

if os.environ.get("LIGHTSWEEP_WARM_IMPORTS"):
    import importlib

    for _module in os.environ["LIGHTSWEEP_WARM_IMPORTS"].split(","):
        importlib.import_module(_module)
