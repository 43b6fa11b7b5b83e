"""Every private part of Ray, Lightning, torch, Optuna and W&B that lightsweep uses, one module
per mechanism, each behind a named layer that is probed before use and falls back to the public
way where a release moved it (:mod:`tuning._internals.probe`).

Nothing here imports Ray, Lightning or Optuna on import of the package; each module imports the
private parts it needs inside its functions.
"""
