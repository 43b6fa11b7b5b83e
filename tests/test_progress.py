"""The console during a sweep: a table redrawn in place on a terminal, log lines elsewhere."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tuning.driver.progress import (
    LiveProgress,
    ProgressCallback,
    progress_callback,
    stop_live_displays,
)


@dataclass
class _Trial:
    trial_id: str
    config: dict[str, Any]
    last_result: dict[str, Any] = field(default_factory=dict)
    error_file: str | None = None


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


# What rich's live display writes to take back its last frame: to the line's start, then up and
# clear, line by line.
ERASE = r"\r(?:\x1b\[2K\x1b\[1A)*\x1b\[2K"


def _last_frame(output: str) -> list[str]:
    return re.split(ERASE, output)[-1].replace("\x1b[?25h", "").splitlines()


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("COLUMNS", "160")
    monkeypatch.setenv("LINES", "40")
    yield
    stop_live_displays()  # a test's table gives the console back


def _epochs(live: LiveProgress, trial: _Trial, values: list[float]) -> None:
    for epoch, value in enumerate(values, start=1):
        trial.last_result = {"val/acc": value, "epoch": epoch}
        live.on_trial_result(0, [], trial, trial.last_result)  # type: ignore[arg-type]


def test_live_table_redraws_in_place_with_status_epoch_and_best() -> None:
    terminal = _Terminal()
    live = LiveProgress("val/acc", "max", 4, 3, stream=terminal, min_interval_s=0)
    good, weak, running = (_Trial("good", {"module.lr": 0.01}), _Trial("weak", {"module.lr": 0.5}),
                           _Trial("busy", {"module.lr": 0.02}))
    for trial in (good, weak, running):
        live.on_trial_start(0, [], trial)  # type: ignore[arg-type]
    _epochs(live, good, [0.5, 0.7, 0.9, 0.85])
    live.on_trial_complete(0, [], good)  # type: ignore[arg-type]
    _epochs(live, weak, [0.2])
    live.on_trial_complete(0, [], weak)  # type: ignore[arg-type]
    _epochs(live, running, [0.6, 0.8])
    live.stop()
    output = terminal.getvalue()
    # Each frame erases the one before it (cursor up over its lines, each cleared).
    assert len(re.findall(ERASE, output)) >= 8
    header, columns, *rows = _last_frame(output)
    assert header.startswith("2/3 trials ended: 1 completed, 1 stopped early, 0 errored; "
                             "1 running. Best val/acc: 0.9000 (good)")
    assert columns.split()[:5] == ["trial", "status", "epoch", "val/acc", "best"]
    # Running trials first, then the ended ones, best first.
    assert [r.split()[:5] for r in rows] == [
        ["busy", "running", "2/4", "0.8000", "0.8000"],
        ["good", "completed", "4/4", "0.8500", "0.9000"],
        ["weak", "stopped", "1/4", "0.2000", "0.2000"],
    ]


def test_live_table_fits_the_terminal_and_says_how_many_it_left_out() -> None:
    live = LiveProgress("val/loss", "min", 2, 50, stream=_Terminal(), min_interval_s=0)
    for n in range(30):
        trial = _Trial(f"t{n:02d}", {})
        live.on_trial_start(0, [], trial)  # type: ignore[arg-type]
        trial.last_result = {"val/loss": float(n), "epoch": 2}
        live.on_trial_result(0, [], trial, trial.last_result)  # type: ignore[arg-type]
        live.on_trial_complete(0, [], trial)  # type: ignore[arg-type]
    lines = live.frame(height=10)
    assert len(lines) <= 10 - 1
    assert lines[2].split()[0] == "t00"  # the lowest loss first
    assert lines[-1].startswith("... and 24 more")


def test_lines_written_while_the_table_shows_go_above_it_whole(
        capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    terminal = _Terminal()
    live = LiveProgress("val/acc", "max", 4, 1, stream=terminal, min_interval_s=0)
    trial = _Trial("a", {"module.lr": 0.1})
    live.on_trial_start(0, [], trial)  # type: ignore[arg-type]
    # What Ray forwards of a worker's output, and the user's own prints, while the table shows.
    print("(RayTrainWorker pid=7) loading shard 3 of 8")
    sys.stderr.write("(RayTrainWorker pid=7) a warning of the user's code\n")
    _epochs(live, trial, [0.5])
    live.on_trial_complete(0, [], trial)  # type: ignore[arg-type]
    live.on_experiment_end([])  # type: ignore[arg-type]
    output = terminal.getvalue()
    for line in ("(RayTrainWorker pid=7) loading shard 3 of 8",
                 "(RayTrainWorker pid=7) a warning of the user's code"):
        # After the frame was taken back, whole, and a frame drawn again below it.
        assert re.search(ERASE + re.escape(line) + "\n[01]/1 trials ended", output), output
    assert _last_frame(output)[0].startswith("1/1 trials ended")
    # The display ended with the sweep: the console is the process's own again.
    print("after the sweep")
    assert "after the sweep" in capsys.readouterr().out and "after" not in terminal.getvalue()


def test_results_redraw_at_most_every_interval() -> None:
    terminal = _Terminal()
    live = LiveProgress("val/acc", "max", 100, 1, stream=terminal, min_interval_s=60)
    trial = _Trial("t", {})
    live.on_trial_start(0, [], trial)  # type: ignore[arg-type]
    _epochs(live, trial, [0.1 * n for n in range(1, 50)])
    assert terminal.getvalue().count("trials ended") == 1  # the start's frame alone


@pytest.mark.parametrize(("tty", "env", "expected"), [
    (True, None, LiveProgress), (False, None, ProgressCallback),
    (False, "live", LiveProgress), (True, "lines", ProgressCallback),
])
def test_terminal_gets_the_table_and_pipes_get_lines(
    monkeypatch: pytest.MonkeyPatch, tty: bool, env: str | None, expected: type
) -> None:
    monkeypatch.setattr("sys.stderr", _Terminal() if tty else io.StringIO())
    if env is None:
        monkeypatch.delenv("LIGHTSWEEP_PROGRESS", raising=False)
    else:
        monkeypatch.setenv("LIGHTSWEEP_PROGRESS", env)
    assert type(progress_callback("val/acc", "max", 4, 3)) is expected


def test_lines_show_a_sweeps_other_objectives_beside_its_metric(caplog) -> None:
    lines = ProgressCallback("val/acc", "max", 4, also=("model/params",))
    trial = _Trial("a", {})
    with caplog.at_level("INFO", logger="lightsweep.progress"):
        lines.on_trial_result(0, [], trial,  # type: ignore[arg-type]
                              {"val/acc": 0.5, "model/params": 12345.0, "epoch": 1})
        lines.on_trial_result(0, [], trial, {"val/acc": 0.6, "epoch": 2})  # type: ignore[arg-type]
    assert "epoch 1/4: val/acc=0.5000 model/params=12345  best so far" in caplog.text
    # An objective a result lacks is left out of its line.
    assert "epoch 2/4: val/acc=0.6000  best so far" in caplog.text
