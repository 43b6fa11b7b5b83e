"""Sweep drivers run as a user runs them: ``run_tune.py`` in a process of its own."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import REPO


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def driver_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a sweep driver of its own, which starts its own Ray
    (never joins the one a ``RAY_ADDRESS`` names), with ``env`` on top."""
    return {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, **(env or {})}


def start_driver(
    args: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    """A sweep driver in its own process session, so the test can end all it started."""
    env = driver_env(env)
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, str(REPO / "run_tune.py"), *args], cwd=cwd, env=env, text=True,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )


def finish(process: subprocess.Popen[str], log: Path, timeout_s: float) -> str:
    try:
        process.wait(timeout=timeout_s)
    finally:
        end_session(process)
    return log.read_text()


def end_session(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):  # the driver's own session: its Ray processes
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
