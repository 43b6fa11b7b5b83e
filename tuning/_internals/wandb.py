"""W&B's experimental setting for how often it writes what it buffered (15 s by default).

ASHA ends a stopped trial's processes with no time to finish its run: what W&B buffered would be
lost. Private: the ``x_`` setting. Public way: none; where this layer is off, W&B writes on its
own schedule.
"""

from __future__ import annotations

from typing import Any

from tuning._internals.probe import enabled, layer

LAYER = "wandb-flush"
FLUSH_SETTING = "x_transaction_log_flush_interval"


@layer(LAYER, "W&B writing a stopped trial's run within seconds",
       "W&B writes on its own schedule (a stopped trial's last seconds may be lost)",
       execution=False)
def _probe() -> None:
    import wandb

    if FLUSH_SETTING not in wandb.Settings.model_fields:
        raise AttributeError(f"wandb.Settings has no {FLUSH_SETTING}")


def flush_settings(seconds: float) -> dict[str, Any]:
    """The ``wandb.Settings`` arguments that flush every ``seconds``."""
    return {FLUSH_SETTING: seconds} if enabled(LAYER) else {}
