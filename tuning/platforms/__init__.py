"""Handing a sweep to the platform that runs a team's GPUs: a SLURM batch script
(:mod:`tuning.platforms.slurm`) and a KubeRay ``RayJob`` (:mod:`tuning.platforms.kubernetes`).

Both run the same entrypoint, ``launch ... --name NAME --if-exists resume``: rerun by the
platform after any death (a requeue, a lost head pod), it continues the sweep from its storage.
Both only write text; neither imports Ray.
"""
