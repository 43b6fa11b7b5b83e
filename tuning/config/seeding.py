"""Each trial's seed: drawn from the sweep's seed and the trial's number, so that a sweep run
again with the same seed gives its n-th trial the same seed, and no two trials share one.

The seed is part of the trial's config (key :data:`tuning.contracts.SEED_KEY`): the leaderboard
records it, and the trial's workers pass it to Lightning's ``seed_everything``.
"""

from __future__ import annotations

import random


def trial_seed(sweep_seed: int, number: int) -> int:
    """The seed of the sweep's trial ``number`` (0-based, in the order trials were proposed)."""
    # Seeding from a string hashes it (SHA-512): stable across processes and Python versions.
    return random.Random(f"lightsweep:{sweep_seed}:{number}").randrange(2**31)
