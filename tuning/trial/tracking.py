"""Weights & Biases inside a trial: one run per trial, grouped by the sweep, rank 0 alone.

The trial's driver decides what the run is (:func:`wandb_run`: project, group, id, directory and
mode, from the sweep file and the user's environment) and hands it to the trial's workers, where
:func:`wandb_logger` gives the Trainer a Lightning ``WandbLogger``. Lightning's loggers open their
run on global rank 0 only, so a trial of N DDP workers is one run, not N (Ray's ``setup_wandb``
opens one per worker under Train V2). The run's id is the trial's, so the restarts of a trial
(a retry after a worker died, a resume) continue one run.
"""

from __future__ import annotations

import netrc
import os
import re
from typing import Any

from tuning._internals.wandb import flush_settings
from tuning.config.spec import SweepSpec
from tuning.record.location import Location

WANDB_FLUSH_S = 0.25  # how often a run's file is written: a stopped trial loses this much
_NOT_IN_IDS = re.compile(r"[^\w.-]")


def _api_key_configured() -> bool:
    """Whether W&B can log in: ``WANDB_API_KEY``, or the key ``wandb login`` keeps in netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        hosts = netrc.netrc(os.environ.get("NETRC")).hosts
    except (OSError, netrc.NetrcParseError):
        return False
    host = re.sub(r"^https?://", "", os.environ.get("WANDB_BASE_URL", "api.wandb.ai"))
    return host in hosts


def wandb_mode() -> str:
    """``WANDB_MODE`` if the user set it; else online with an API key, offline without."""
    return os.environ.get("WANDB_MODE") or ("online" if _api_key_configured() else "offline")


def wandb_run(
    spec: SweepSpec, experiment: Location, trial_id: str, mode: str,
) -> dict[str, Any] | None:
    """What the trial's W&B run is, for its workers (None when W&B is off).

    Args:
        spec: The sweep; its ``wandb`` section.
        experiment: The experiment directory; a local one also keeps the offline runs.
        trial_id: The trial, which names the run.
        mode: W&B's mode, decided by the sweep's driver (:func:`wandb_mode`).
    """
    if not spec.wandb.enabled:
        return None
    return {
        "project": spec.wandb.project,
        "entity": spec.wandb.entity,
        "group": experiment.name,
        "name": trial_id,
        # Unique in the project across sweeps, and stable across the trial's restarts.
        "id": _NOT_IN_IDS.sub("-", f"{experiment.name}-{trial_id}")[-64:],
        "tags": list(spec.wandb.tags),
        # W&B writes to local files only: a cloud experiment's runs stay in the workers' own
        # directories (online, W&B keeps them anyway).
        "save_dir": experiment.uri if experiment.is_local else None,
        "mode": mode,
    }


def wandb_logger(pl: Any, run: dict[str, Any], config: dict[str, Any]) -> Any:
    """A Lightning ``WandbLogger`` (of the user's Lightning namespace ``pl``) for ``run``,
    its config the trial's searched values."""
    import wandb

    if run["save_dir"]:
        os.makedirs(run["save_dir"], exist_ok=True)
    # Silent from the start: Lightning passes W&B a deprecated setting, and W&B would warn
    # about it on the sweep's console once per trial.
    wandb.setup(settings=wandb.Settings(silent=True))
    return pl.loggers.WandbLogger(
        **run, config=config, resume="allow", log_model=False,
        settings=wandb.Settings(
            # The sweep's console is the driver's: W&B's banners and output capture stay out.
            console="off", silent=True,
            # ASHA stops a trial by ending its processes, with no time to finish the run: what
            # W&B buffered would be lost (it writes every 15 s by default), the run file empty.
            **flush_settings(WANDB_FLUSH_S),
        ),
    )


def finish_wandb() -> None:
    """Ends this process's W&B run, if it has one, so that its files are whole."""
    import wandb

    if wandb.run is not None:
        wandb.run.finish()
