"""GPUs: how trials share one, and which precisions a card can run.

Ray hands out fractions of a GPU while Lightning wants whole devices (ray#14624). A trial of one
worker at ``gpus_per_worker: 0.5`` gets GPU memory and a device from Ray, and Lightning a whole
device (``devices=1`` on the device Ray gave): two such trials share the card. Each is capped at
its share of the card's memory, so one that runs out fails alone with CUDA's out-of-memory error
instead of starving its neighbour.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tuning.errors import SweepError

# The compute capability each precision needs. bfloat16 arithmetic came with Ampere (8.0);
# older cards emulate it at a fraction of the speed, which is worse than refusing. FP8, which
# Transformer Engine trains in, came with Ada and Hopper (8.9). float16 and float64 run on every
# card PyTorch supports.
MIN_CAPABILITY: dict[str, tuple[int, int]] = {
    "bf16-mixed": (8, 0),
    "bf16-true": (8, 0),
    "transformer-engine": (8, 9),
    "transformer-engine-float16": (8, 9),
}

# Ray's accelerator types (ray.util.accelerators, the ``accelerator_type:<name>`` resource each
# node advertises) and their cards' compute capability: what a cluster's GPUs are before any
# trial runs on them. A type missing here is not checked.
CAPABILITY_OF_TYPE: dict[str, tuple[int, int]] = {
    "K80": (3, 7), "P4": (6, 1), "P100": (6, 0), "V100": (7, 0), "T4": (7, 5),
    "A100": (8, 0), "A10G": (8, 6), "L4": (8, 9), "L40S": (8, 9),
    "H100": (9, 0), "H200": (9, 0), "H20": (9, 0),
    "B200": (10, 0), "GB200": (10, 0), "B300": (10, 3), "GB300": (10, 3),
    "RTX-PRO-6000": (12, 0),
}
ACCELERATOR_TYPE_PREFIX = "accelerator_type:"


@dataclass(frozen=True)
class Gpu:
    """A kind of GPU the sweep's trials may run on.

    Attributes:
        name: The card's name (``"NVIDIA H100 80GB HBM3"``) or Ray's accelerator type (``"H100"``).
        capability: Its CUDA compute capability, or None where it is not known.
    """

    name: str
    capability: tuple[int, int] | None


def local_gpus() -> tuple[Gpu, ...]:
    """The GPUs of this machine, one entry per kind of card."""
    import torch

    if not torch.cuda.is_available():
        return ()
    found = {Gpu(torch.cuda.get_device_name(i), torch.cuda.get_device_capability(i))
             for i in range(torch.cuda.device_count())}
    return tuple(sorted(found, key=lambda g: g.name))


def cluster_gpus(resources: Mapping[str, float]) -> tuple[Gpu, ...]:
    """The kinds of GPU a Ray cluster has, from the accelerator types its nodes advertise."""
    names = sorted(k.removeprefix(ACCELERATOR_TYPE_PREFIX) for k in resources
                   if k.startswith(ACCELERATOR_TYPE_PREFIX))
    return tuple(Gpu(n, CAPABILITY_OF_TYPE.get(n)) for n in names)


def check_precision_on(field: str, precision: str, gpus: Iterable[Gpu]) -> None:
    """Refuses ``precision`` if a GPU the trials may run on cannot run it.

    Args:
        field: Where the precision is set, for the message (``"trainer_args.precision"``).
        precision: Lightning's canonical precision name.
        gpus: The kinds of GPU trials may land on; any of them must run it.

    Raises:
        SweepError: Naming the card, what it has and what the precision needs.
    """
    needed = MIN_CAPABILITY.get(precision)
    if needed is None:
        return
    for gpu in gpus:
        if gpu.capability is not None and gpu.capability < needed:
            raise SweepError(
                f"{field}: precision {precision!r} needs a GPU of compute capability "
                f"{needed[0]}.{needed[1]} or later, but trials may run on {gpu.name} "
                f"({gpu.capability[0]}.{gpu.capability[1]}). Fix: use 16-mixed or 32-true "
                "on this card, or run on newer GPUs"
            )


def share_error(workers_per_trial: int, gpus_per_worker: float) -> str | None:
    """Why ``gpus_per_worker`` cannot be given to trials, or None if it can.

    A fraction must split a card evenly (1/n), or the last share of every card is never used;
    a DDP trial on a fraction would put two of its ranks on one card, which NCCL refuses; and
    a worker drives one device, so more than one GPU per worker would sit idle.
    """
    if gpus_per_worker <= 0 or gpus_per_worker == 1:
        return None
    if gpus_per_worker > 1:
        return (f"{gpus_per_worker:g} GPUs per worker: each worker trains on one device. Fix: "
                "set gpus_per_worker: 1 and workers_per_trial to the number of GPUs a trial uses")
    if workers_per_trial > 1:
        return (f"a trial of {workers_per_trial} DDP workers cannot share GPUs "
                f"(gpus_per_worker: {gpus_per_worker:g}): NCCL refuses two ranks on one card. "
                "Fix: set gpus_per_worker: 1, or workers_per_trial: 1 to pack trials on a GPU")
    per_gpu = 1 / gpus_per_worker  # Ray keeps 4 decimals of a resource: 0.3333 is a third
    if not math.isclose(per_gpu, round(per_gpu), rel_tol=0, abs_tol=1e-3):
        below = 1 / math.floor(per_gpu)
        above = 1 / math.ceil(per_gpu)
        return (f"{gpus_per_worker:g} does not divide one GPU ({per_gpu:.2f} trials per card). "
                f"Fix: use 1/n, such as {above:.4g} or {below:.4g}")
    return None


def trials_per_gpu(gpus_per_worker: float) -> int:
    """How many one-worker trials share a card (1 for a whole GPU or more)."""
    if not 0 < gpus_per_worker < 1:
        return 1
    return round(1 / gpus_per_worker)


def memory_fraction(gpus_per_worker: float) -> float | None:
    """The share of its card's memory a worker is capped at, or None for a whole card."""
    if not 0 < gpus_per_worker < 1:
        return None
    return 1 / trials_per_gpu(gpus_per_worker)
