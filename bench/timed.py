"""The bench's module: :class:`TimedClassifier`, the user's module with a stopwatch.

It logs how long its fit has run (``bench/fit_s``), its epoch (``bench/epoch``, 1-based), the
samples it trained on (``bench/samples``) and how long the previous epoch's end took before this
epoch started (``bench/report_gap_s``: the checkpoint and report).
"""

from __future__ import annotations

import time
from typing import Any

from lightning_modules import Classifier


class TimedClassifier(Classifier):
    """:class:`Classifier` that logs its own fit time, samples and end-of-epoch gaps."""

    def on_fit_start(self) -> None:
        self._fit_start = time.perf_counter()
        self._samples = 0
        self._epoch_done: float | None = None
        self._gap = 0.0

    def on_train_epoch_start(self) -> None:
        if self._epoch_done is not None:
            self._gap = time.perf_counter() - self._epoch_done

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._samples += len(batch[1])

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        # The last hook before the epoch's end-of-epoch work (checkpoint, report).
        self.log("bench/fit_s", time.perf_counter() - self._fit_start, sync_dist=True)
        self.log("bench/samples", float(self._samples), sync_dist=True)
        self.log("bench/report_gap_s", self._gap, sync_dist=True)
        self.log("bench/epoch", float(self.current_epoch + 1), sync_dist=True)
        self._epoch_done = time.perf_counter()
