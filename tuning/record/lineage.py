"""A trial's lineage under population-based training: which trial it continued from, when, and
with which values.

Population-based training (:mod:`tuning.driver.pbt`) restarts a trial with a new config; what
happened travels in that config under :data:`LINEAGE_KEY`, so that the trial's driver (which
restarts its Train run from the copied checkpoint), the record (which keeps every exploit) and
the searcher (which stops learning from a trial whose values changed) all read it from the one
place Tune hands each of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from tuning.contracts import LINEAGE_KEY

PBT_DIR = "pbt"  # under a trial's directory: the copy of the donor's checkpoint it continues from


@dataclass(frozen=True)
class Exploit:
    """One exploit: the trial continued from ``donor``'s checkpoint of ``epoch``, with
    ``values`` (its searched values from then on; ``before``: those it had).

    Attributes:
        generation: 1 for the trial's first exploit, 2 for its second, ...
        donor: The trial whose checkpoint it continued from.
        epoch: The epoch of that checkpoint: the trial's next epoch is ``epoch + 1``.
        checkpoint: Where the copy of that checkpoint is (URI or local path).
        values: The searched values after the exploit.
        before: The searched values before it.
    """

    generation: int
    donor: str
    epoch: int
    checkpoint: str
    values: dict[str, Any]
    before: dict[str, Any]

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> Exploit | None:
        """The last exploit of the trial whose config is ``config`` (None: never exploited)."""
        data = config.get(LINEAGE_KEY)
        return cls(**data) if isinstance(data, Mapping) else None

    def as_data(self) -> dict[str, Any]:
        return asdict(self)


def searched_values(config: Mapping[str, Any],
                    names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A config without what lightsweep adds to it (the lineage), its keys by ``names`` where
    given (:attr:`tuning.config.spec.SweepSpec.shown_keys`)."""
    names = names or {}
    return {names.get(k, k): v for k, v in config.items() if k != LINEAGE_KEY}
