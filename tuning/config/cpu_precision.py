"""Whether this machine's CPU trains in bfloat16 at speed.

PyTorch runs bfloat16 on a CPU natively only with AVX-512 BF16 or AMX (x86) or the BF16
instructions of recent Arm cores; elsewhere its kernels convert each value to float32 and back.
On an AVX2-only CPU the default sweep's CNN ran a ``bf16-mixed`` step 14x slower than
``32-true`` (a width-128 conv1d, batch 128, one thread: 1.09 s against 0.078 s), so a CPU sweep
over precision spends most of its time in its bfloat16 trials. Lightning gives no sign of it,
and the CPU's flags name the instructions, not the speed PyTorch gets from them: the launch
measures it, in the process that checks the user's classes (it has torch imported), and warns.
"""

from __future__ import annotations

import time

# A bfloat16 pass this many times slower than float32 is a CPU without native bfloat16 (on
# one with it, bfloat16 is about as fast or faster; this measurement gives 6.5-10x on AVX2).
SLOW_RATIO = 3.0
BF16_PRECISIONS = ("bf16-mixed", "bf16-true")


def bf16_slowdown(repeats: int = 20) -> float:
    """How many times longer a small linear layer's forward pass takes under bfloat16 autocast
    than in float32, on one thread of this CPU (a few milliseconds)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        layer, batch = torch.nn.Linear(256, 256), torch.randn(128, 256)

        def seconds(bf16: bool) -> float:
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                layer(batch)  # kernels chosen, memory touched
                start = time.perf_counter()
                for _ in range(repeats):
                    layer(batch)
                return time.perf_counter() - start

        # The faster of two tries each: a busy machine only ever slows a try down.
        return min(seconds(True) for _ in range(2)) / min(seconds(False) for _ in range(2))
    finally:
        torch.set_num_threads(threads)


def slow_bf16_warning(field: str, precisions: list[str], slowdown: float) -> str | None:
    """What to tell the user of a CPU sweep whose ``field`` takes ``precisions`` (Lightning's
    names, normalized), when bfloat16 runs ``slowdown`` times slower than float32 on this CPU;
    None when nothing is worth saying."""
    slow = [p for p in precisions if p in BF16_PRECISIONS]
    if not slow or slowdown < SLOW_RATIO:
        return None
    return (f"{field}: {' and '.join(slow)} runs {slowdown:.0f}x slower than 32-true on this "
            "machine's CPU (no native bfloat16: that takes AVX-512 BF16, AMX or Arm's BF16 "
            "instructions), so those trials take that much longer. Fix: leave bfloat16 out of "
            f"{field} here, or sweep it where it runs natively (such a CPU, or a GPU)")
