"""Imports, as a Python process starts, the modules its ``LIGHTSWEEP_WARM_IMPORTS`` names: a
Train worker that Ray starts ahead of need (:mod:`tuning.trial.warm_pool`), whose
``PYTHONPATH`` begins with this directory, then has torch, Lightning and the user's classes
imported before its trial needs it. A process without that variable imports nothing.

Once its imports are done, the worker forgets both: this directory leaves its ``PYTHONPATH`` and
the variable goes, so that the Python processes its fit starts (DataLoader workers under spawn,
compile workers, subprocesses) start as they would anywhere else.

Python imports only the first ``sitecustomize`` on its path, so this one then runs the one it
hides, if any (a distribution's or an environment's own).
"""

import os
import sys


def _warm_imports() -> None:
    import importlib

    for module in filter(None, os.environ.get("LIGHTSWEEP_WARM_IMPORTS", "").split(",")):
        try:
            importlib.import_module(module)
        except ImportError:
            # Not importable yet (a module shipped to the cluster later, say): the trial
            # imports it itself, as a worker not started ahead does.
            continue


def _forget_warm_env() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    if os.environ.pop("LIGHTSWEEP_WARM_IMPORTS", None) is None:
        return
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
            if p and os.path.abspath(p) != here]
    if rest:
        os.environ["PYTHONPATH"] = os.pathsep.join(rest)
    else:
        os.environ.pop("PYTHONPATH", None)


def _run_hidden_sitecustomize() -> None:
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


_warm_imports()
_forget_warm_env()
_run_hidden_sitecustomize()
