"""A sweep's progress on the console: a table refreshed in place on a terminal
(:class:`LiveProgress`), one log line per trial event elsewhere (:class:`ProgressCallback`: CI,
log files, a pipe). :func:`progress_callback` picks one.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

from ray.tune import Callback
from ray.tune.experiment import Trial
from typing_extensions import override

from tuning.errors import describe_error, trial_error
from tuning.read.formats import metric_text
from tuning.record import end_status
from tuning.record.lineage import searched_values

logger = logging.getLogger("lightsweep.progress")


def _better(value: float, best: float | None, mode: str) -> bool:
    """Whether ``value`` beats ``best`` (None: nothing yet) for a metric optimized by ``mode``."""
    return best is None or (value > best if mode == "max" else value < best)


def _fmt_config(config: dict[str, Any], names: Mapping[str, str] | None = None) -> str:
    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in searched_values(config, names).items()
    )


class ProgressCallback(Callback):
    """Logs trial starts, each epoch's metric with the best so far (and the ``also`` metrics:
    a sweep's other objectives), and how trials end."""

    def __init__(self, metric: str, mode: str, max_epochs: int,
                 also: tuple[str, ...] = (), names: Mapping[str, str] | None = None) -> None:
        self.metric, self.mode, self.max_epochs, self.also = metric, mode, max_epochs, also
        self.names = dict(names or {})
        self.best: tuple[float, str] | None = None

    @override
    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        logger.info("trial %s started: %s", trial.trial_id,
                    _fmt_config(trial.config, self.names))

    @override
    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        value = result.get(self.metric)
        epoch = int(result.get("epoch", 0))
        if isinstance(value, int | float) and _better(
                value, self.best[0] if self.best else None, self.mode):
            self.best = (float(value), trial.trial_id)
        best = f"{self.best[0]:.4f} ({self.best[1]})" if self.best else "-"
        shown = f"{value:.4f}" if isinstance(value, int | float) else "n/a"
        shown += "".join(f" {m}={metric_text(result[m])}" for m in self.also
                         if isinstance(result.get(m), int | float))
        logger.info(
            "trial %s epoch %d/%d: %s=%s  best so far %s",
            trial.trial_id, epoch, self.max_epochs, self.metric, shown, best,
        )

    @override
    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        epochs = int(trial.last_result.get("epoch", 0))  # restored with the trial on resume
        how = {"completed": "completed", "stopped": "stopped early"}[
            end_status(epochs, self.max_epochs)
        ]
        logger.info("trial %s %s after %d epochs", trial.trial_id, how, epochs)

    @override
    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        logger.warning(
            "trial %s errored: %s", trial.trial_id, describe_error(trial_error(trial))
        )


@dataclass
class _Row:
    trial_id: str
    config: str
    status: str = "running"
    epoch: int = 0
    value: float | None = None
    best: float | None = None


class LiveProgress(Callback):
    """A table of the sweep's trials redrawn in place: each trial's status, epoch, last and
    best metric, and the sweep's best so far. Running trials come first, then the ended ones,
    best first, as many as the terminal has room for.

    Drawn by ``rich``'s live display, which, while it runs, takes the process's standard output
    and error (Ray's forwarded lines of the trials' workers, the user's prints) and the log's
    console handlers, and prints what they write above the table: nothing overwrites a line.

    Args:
        metric: The metric the sweep optimizes.
        mode: ``"max"`` or ``"min"``.
        max_epochs: Epochs of a trial that runs to the end.
        num_samples: The sweep's number of trials.
        stream: Where to draw (a terminal); standard error by default.
        min_interval_s: Redraws on results come at most this often (ends always redraw).
    """

    def __init__(self, metric: str, mode: str, max_epochs: int, num_samples: int,
                 stream: IO[str] | None = None, min_interval_s: float = 0.25,
                 names: Mapping[str, str] | None = None) -> None:
        self.metric, self.mode, self.max_epochs = metric, mode, max_epochs
        self.names = dict(names or {})
        self.num_samples = num_samples
        self.stream = stream or sys.stderr
        self.min_interval_s = min_interval_s
        self.rows: dict[str, _Row] = {}
        self._last_draw = 0.0
        self._live: Any = None  # rich's Live, while the sweep runs
        self._handlers: list[tuple[logging.StreamHandler[Any], Any]] = []

    def __getstate__(self) -> dict[str, Any]:
        # Tune saves its callbacks with the experiment: the display is this process's alone.
        return {**self.__dict__, "_live": None, "_handlers": []}

    def _row(self, trial: Trial) -> _Row:
        if trial.trial_id not in self.rows:
            self.rows[trial.trial_id] = _Row(trial.trial_id,
                                             _fmt_config(trial.config, self.names))
        return self.rows[trial.trial_id]

    @override
    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._row(trial).status = "running"
        self.draw(force=True)

    @override
    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        row = self._row(trial)
        row.epoch = int(result.get("epoch", row.epoch))
        value = result.get(self.metric)
        if isinstance(value, int | float):
            row.value = float(value)
            if _better(row.value, row.best, self.mode):
                row.best = row.value
        self.draw()

    @override
    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        row = self._row(trial)
        row.epoch = int(trial.last_result.get("epoch", row.epoch))
        row.status = end_status(row.epoch, self.max_epochs)
        self.draw(force=True)

    @override
    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._row(trial).status = "errored"
        # Printed above the table (the log's handler writes through the live display).
        logger.warning("trial %s errored: %s", trial.trial_id, describe_error(trial_error(trial)))
        self.draw(force=True)

    @override
    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        self.draw(force=True)
        self.stop()  # the last frame stays

    def _start(self) -> None:
        from rich.console import Console
        from rich.live import Live

        console = Console(file=self.stream, force_terminal=True, highlight=False)
        self._live = Live(console=console, auto_refresh=False, transient=False,
                          redirect_stdout=True, redirect_stderr=True,
                          vertical_overflow="visible")
        self._live.start()
        _ACTIVE.add(self)
        # Log handlers hold the stream they were made with: point those writing to the console
        # at the live display's, so their lines go above the table too.
        for handler in logging.root.handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream in (
                    sys.__stderr__, sys.__stdout__, self.stream):
                self._handlers.append((handler, handler.stream))
                handler.setStream(sys.stderr)

    def stop(self) -> None:
        """Ends the live display (its last frame stays), giving the console back."""
        if self._live is None:
            return
        self._live.stop()
        self._live = None
        _ACTIVE.discard(self)
        for handler, stream in self._handlers:
            handler.setStream(stream)
        self._handlers = []

    def draw(self, force: bool = False) -> None:
        """Replaces the last frame with the current one (results: at most every interval)."""
        now = time.monotonic()
        if not force and now - self._last_draw < self.min_interval_s:
            return
        self._last_draw = now
        from rich.text import Text

        if self._live is None:
            self._start()
        lines = self.frame(shutil.get_terminal_size().lines)
        self._live.update(Text("\n".join(lines), no_wrap=True, overflow="crop"), refresh=True)

    def frame(self, height: int = 24) -> list[str]:
        """The table as lines, at most ``height`` - 1 of them."""
        rows = list(self.rows.values())
        count = {s: sum(r.status == s for r in rows)
                 for s in ("running", "completed", "stopped", "errored")}
        best = None
        for r in rows:
            if r.best is not None and _better(r.best, None if best is None else best.best, self.mode):
                best = r
        best_text = (f"{metric_text(best.best)} ({best.trial_id})"
                     if best and best.best is not None else "-")
        lines = [
            f"{len(rows) - count['running']}/{self.num_samples} trials ended: "
            f"{count['completed']} completed, {count['stopped']} stopped early, "
            f"{count['errored']} errored; {count['running']} running. "
            f"Best {self.metric}: {best_text}",
        ]
        ended = sorted((r for r in rows if r.status != "running"),
                       key=lambda r: (r.best is None,
                                      -(r.best or 0.0) if self.mode == "max" else (r.best or 0.0)))
        shown = [r for r in rows if r.status == "running"] + ended
        room = max(1, height - 4)  # the summary, the header and "... more" lines
        header = ("trial", "status", "epoch", self.metric, "best", "config")
        table = [header] + [(
            r.trial_id, r.status, f"{r.epoch}/{self.max_epochs}",
            "-" if r.value is None else metric_text(r.value),
            "-" if r.best is None else metric_text(r.best), r.config,
        ) for r in shown[:room]]
        widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
        width = shutil.get_terminal_size().columns
        for row in table:
            line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1]
            lines.append(line[:width])
        if len(shown) > room:
            lines.append(f"... and {len(shown) - room} more (lightsweep leaderboard shows all)")
        return lines


# The live displays running in this process: stopped when a sweep ends without Tune's last
# callback (interrupted, failed).
_ACTIVE: set[LiveProgress] = set()


def stop_live_displays() -> None:
    """Stops every live table of this process, giving the console back."""
    for live in list(_ACTIVE):
        live.stop()


PROGRESS_ENV = "LIGHTSWEEP_PROGRESS"


def progress_callback(metric: str, mode: str, max_epochs: int, num_samples: int,
                      also: tuple[str, ...] = (), names: Mapping[str, str] | None = None
                      ) -> Callback:
    """The live table on a terminal, log lines otherwise; ``LIGHTSWEEP_PROGRESS=live`` or
    ``lines`` chooses. Lines show the ``also`` metrics beside ``metric``; searched values go by
    ``names`` (:attr:`tuning.config.spec.SweepSpec.shown_keys`)."""
    choice = os.environ.get(PROGRESS_ENV) or ("live" if sys.stderr.isatty() else "lines")
    if choice == "live":
        return LiveProgress(metric, mode, max_epochs, num_samples, names=names)
    return ProgressCallback(metric, mode, max_epochs, also, names)
