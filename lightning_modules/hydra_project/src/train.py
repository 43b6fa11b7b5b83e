"""Trains one model from the composed config: ``python src/train.py [OVERRIDES]``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig


def setup_root(start: Path, indicator: str = ".project-root") -> Path:
    """The project's root, the first directory above ``start`` holding ``indicator``, set as
    ``PROJECT_ROOT`` and put on the path (what rootutils.setup_root does)."""
    for folder in [start, *start.parents]:
        if (folder / indicator).exists():
            os.environ["PROJECT_ROOT"] = str(folder)
            sys.path.insert(0, str(folder))
            return folder
    raise FileNotFoundError(f"no {indicator} above {start}")


setup_root(Path(__file__).resolve().parent)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Builds the data, model, callbacks, loggers and trainer from ``cfg`` and fits."""
    import lightning as L

    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    datamodule = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model)
    callbacks = [hydra.utils.instantiate(c) for c in (cfg.get("callbacks") or {}).values()
                 if c is not None and "_target_" in c]
    loggers = [hydra.utils.instantiate(c) for c in (cfg.get("logger") or {}).values()
               if c is not None and "_target_" in c]
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    trainer.fit(model=model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


@hydra.main(version_base="1.3", config_path="../configs", config_name="train.yaml")
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    name = cfg.get("optimized_metric")
    return metrics.get(name) if name else None


if __name__ == "__main__":
    main()
