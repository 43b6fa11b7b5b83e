"""The sweep file: what the user writes (:mod:`~tuning.config.spec`), its search space, its
LightningCLI and Hydra objects, and the checks run before any trial starts.

Pure: read by the sweep's driver, each trial's driver and the workers alike; imports no Ray.
"""
