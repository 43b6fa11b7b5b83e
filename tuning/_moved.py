"""Where the modules of an older, flat ``tuning`` package live now.

Experiments that lightsweep pickled (Ray Tune's ``tuner.pkl``, its searcher's and callbacks'
saved state) name the classes and functions they hold by module, and ``resume`` unpickles them:
each old module name resolves, on first import, to the module that holds those names now.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

MOVED = {
    "tuning.ledger": "tuning.record",
    "tuning.spec": "tuning.config.spec", "tuning.space": "tuning.config.space",
    "tuning.checks": "tuning.config.checks", "tuning.targets": "tuning.config.targets",
    "tuning.objects": "tuning.config.objects",
    "tuning.lightning_config": "tuning.config.lightning_config",
    "tuning.yaml_files": "tuning.config.yaml_files", "tuning.seeding": "tuning.config.seeding",
    "tuning.sweep": "tuning.driver.sweep", "tuning.searcher": "tuning.driver.searcher",
    "tuning.warm_start": "tuning.driver.warm_start", "tuning.tune_state": "tuning.driver.tune_state",
    "tuning.storage": "tuning.driver.storage", "tuning.versions": "tuning.driver.versions",
    "tuning.progress": "tuning.driver.progress",
    "tuning.worker": "tuning.trial.worker", "tuning.lightning_compat": "tuning.trial.lightning_compat",
    "tuning.callbacks": "tuning.trial.callbacks", "tuning.tracking": "tuning.trial.tracking",
    "tuning.ray_logs": "tuning.trial.ray_logs",
    "tuning.layout": "tuning.record.layout", "tuning.location": "tuning.record.location",
    "tuning.files": "tuning.record.files", "tuning.study_file": "tuning.record.study_file",
    "tuning.results": "tuning.read.results", "tuning.report": "tuning.read.report",
}
# ``tuning.trial`` (a module before, the trial's package now) keeps its old names in its
# ``__init__``.


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        pass  # the module it names is already imported


def install() -> None:
    """Makes the old names importable (once per process)."""
    if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
        sys.meta_path.append(_MovedModules())
