"""What passes between a sweep's processes: typed, numbered, in one place.

The sweep's driver hands each trial its sweep (the :class:`~tuning.config.spec.SweepSpec` it
validated, pickled: nothing after the driver parses or checks it again) and its searched
values through Ray Tune; a trial's driver hands each Train worker (or its own inline fit) a
:class:`LoopConfig`; workers report results to Tune. The special keys of a trial's config and of
a result are below. A :class:`LoopConfig` carries :data:`FORMAT`; a worker refuses another, with
a message saying so, rather than misread it. Imports nothing heavy: every process reads it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuning.errors import SweepError

if TYPE_CHECKING:  # every process reads this module; the spec's (pydantic) only where used
    from tuning.config.spec import SweepSpec

# The layout of what this module defines; a process that reads another refuses it.
FORMAT = 2

# A trial's config: its seed (tuning.config.seeding), drawn from the sweep's seed and its number.
SEED_KEY = "seed"
# A trial's config: what population-based training did to it (tuning.record.lineage).
LINEAGE_KEY = "pbt"
# A trial's config: the earlier trial it trains longer ({"trial": id, "from_epoch": epochs it had
# run}), in a sweep resumed with more epochs: the Tune trial carries that trial's record on.
CONTINUES_KEY = "continues"
# A result of a trial that PBT moved: how many times it was (the searcher's cue).
GENERATION_METRIC = "pbt/generation"
# A result's keys that say what a trial ran on (precision, device, runner), not what it measured.
RAN_PREFIX = "ran/"
# A result's key naming the checkpoint a resumed run was restored from, sent with that
# checkpoint's report again: its epoch may never have reached the record.
RESENT_CHECKPOINT_KEY = "resent_checkpoint"
# Ray Train's ``train_loop_config``, a dict: the LoopConfig's fields under this key.
LOOP_CONFIG_KEY = "lightsweep"


@dataclass(frozen=True)
class LoopConfig:
    """What a trial's fit is given, in each of its Train workers or in its inline process.

    Attributes:
        spec: The sweep, as the driver validated it.
        config: The trial's searched values, by full key (``"module.lr"``), and its seed.
        local: Whether the trial runs on the machine the sweep was launched from.
        known_epoch: The trial's last epoch the sweep recorded (a restored run resends after it).
        wandb: The trial's W&B run (:func:`tuning.trial.tracking.wandb_run`), or None.
        trial_dir: The trial's directory when the experiment is local, else None.
        start_from: The checkpoint to start from when the run has none of its own (PBT's copy,
            or a trial trained longer's last).
        continued_from: The epochs a trial trained longer had run before (its reports up to
            there are the record's already); 0 for any other.
        warm: In a Train run, what :func:`tuning.trial.warm_pool.note_worker_env` records.
        format: :data:`FORMAT` of the process that made it.
    """

    spec: SweepSpec
    config: dict[str, Any]
    local: bool = False
    known_epoch: int = 0
    wandb: dict[str, Any] | None = None
    trial_dir: str | None = None
    start_from: str | None = None
    continued_from: int = 0
    warm: dict[str, Any] | None = None
    format: int = FORMAT

    def but(self, **changes: Any) -> LoopConfig:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)

    def for_train(self) -> dict[str, Any]:
        """Ray Train's ``train_loop_config``."""
        # Shallow: the spec goes as the object it is (asdict would deep-copy it).
        return {LOOP_CONFIG_KEY: {f.name: getattr(self, f.name)
                                  for f in dataclasses.fields(self)}}

    @classmethod
    def of(cls, given: LoopConfig | Mapping[str, Any]) -> LoopConfig:
        """The loop config a fit was given (as itself, or as Ray Train's dict).

        Raises:
            SweepError: If it is of another :data:`FORMAT` (a process of another lightsweep).
        """
        if isinstance(given, LoopConfig):
            return given
        data = dict(given.get(LOOP_CONFIG_KEY, given))
        if data.get("format") != FORMAT:
            raise SweepError(
                f"a trial's loop config is of format {data.get('format')}, and this lightsweep "
                f"reads format {FORMAT}: the sweep's processes run different lightsweeps. Fix: "
                "install the driver's lightsweep on every node (or let the driver ship it)")
        return cls(**data)
