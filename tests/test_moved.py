"""Names that experiments of the flat ``tuning`` package pickled still resolve."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO
from tuning._moved import MOVED

# What Ray Tune pickled of a sweep (tuner.pkl, the searcher's and callbacks' state), by the
# module names of the flat package.
PICKLED = [
    ("tuning.ledger", "LedgerCallback"), ("tuning.ledger", "Ledger"),
    ("tuning.searcher", "TruthfulOptunaSearch"), ("tuning.study_file", "StudyFile"),
    ("tuning.space", "sample"), ("tuning.space", "SearchSpace"), ("tuning.space", "LogUniform"),
    ("tuning.spec", "SweepSpec"), ("tuning.location", "Location"),
    ("tuning.tune_state", "TuneStateBackup"), ("tuning.progress", "ProgressCallback"),
    ("tuning.trial", "run_trial"), ("tuning.trial", "trial_dirname"),
]


def test_every_pickled_name_of_the_flat_package_loads_as_its_new_self() -> None:
    # A fresh process: each old module is imported by unpickling alone, as resume does.
    code = "\n".join([
        "import pickle, importlib",
        f"pickled = {PICKLED!r}",
        "for module, name in pickled:",
        "    old = pickle.loads(f'c{module}\\n{name}\\n.'.encode())",
        "    print(module, name, old.__module__ + '.' + old.__qualname__)",
    ])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         check=True).stdout.splitlines()
    assert len(out) == len(PICKLED)
    for line in out:
        _, name, now = line.split()
        assert now.split(".")[1] in ("config", "driver", "trial", "record", "read"), line
        assert now.endswith("." + name), line


def test_every_moved_module_is_the_module_it_names() -> None:
    import importlib

    for old, new in MOVED.items():
        assert importlib.import_module(old) is importlib.import_module(new)
