"""The check of the user's classes, in a process of its own while Ray starts (or in the driver's
own, when it has Lightning imported already).

Run as ``python -m tuning.driver.class_check`` by :class:`ClassCheck` only: it reads the sweep
from its stdin and writes back what the check raised (or None) and the warnings it returned.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from types import TracebackType
from typing import IO

from tuning.config.checks import check_launch, check_values, emulated_precisions
from tuning.config.spec import SweepSpec
from tuning.errors import SweepError

logger = logging.getLogger(__name__)

# What the user's classes import: loaded in a driver, they make a new interpreter for the check
# pure cost.
LIGHTNING_MODULES = ("lightning.pytorch", "pytorch_lightning")


class ClassCheck:
    """Runs :func:`tuning.config.checks.check_launch`, in a new Python process unless Lightning
    is imported here already.

    The check imports the user's classes, and with them torch and Lightning: 0.4 GB of memory
    of its own (measured: 124 -> 542 MB anonymous) that the sweep's driver, which needs neither
    while the sweep runs, would otherwise hold to its end. A new interpreter imports them
    instead and ends. Those imports take as long as starting Ray (12.5 and 9.7 s on 2 cores;
    12.7 s for both side by side), so the sweep's driver starts Ray meanwhile and waits for the
    check before any trial starts. The process is a plain ``python -m``, not multiprocessing's
    spawn, which would import the driver's ``__main__`` (run_tune.py, and Ray Tune with it)
    again first.

    A driver that has Lightning imported already (a notebook, or a script that built its model
    before calling :func:`tuning.launch`) holds that memory anyway, and a new interpreter would
    only import it again: 9-10 s of waiting on 2 cores when Ray is up already. There the check
    runs in the driver's own process, before Ray starts.

    Use as a context manager: leaving it stops a check that was not waited for. Values that
    need no class (:func:`tuning.config.checks.check_values`) are checked as it is made.

    Args:
        spec: The sweep to check.
        local: Whether the trials run on this machine (then its GPUs are checked too).
        in_process: Check in this process; by default, when Lightning (either namespace) is
            imported here already.
    """

    def __init__(self, spec: SweepSpec, *, local: bool, in_process: bool | None = None) -> None:
        check_values(spec)  # at once: a wrong value or flag needs no new process, nor Ray
        if in_process is None:
            in_process = any(name in sys.modules for name in LIGHTNING_MODULES)
        self._process: subprocess.Popen[bytes] | None = None
        self._error: SweepError | None = None
        self._warnings: list[str] = []
        # The precisions of a native_precisions sweep that this CPU emulates, and its slowdown.
        self.emulated: tuple[list[str], float] = ([], 1.0)
        if in_process:
            self._error, self._warnings, self.emulated = _check(spec, local)
            return
        # A session of its own: Ctrl-C is the driver's to handle, which then stops the check.
        self._process = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, start_new_session=True)
        # The path first, apart: the user's modules and lightsweep import from it.
        payload = pickle.dumps((sys.path, pickle.dumps((spec, local))))
        assert self._process.stdin is not None
        with self._process.stdin as stdin:
            stdin.write(payload)

    def wait(self) -> None:
        """Returns once the check passed, after logging its warnings.

        Raises:
            SweepError: The check's own, naming the field and the fix.
            RuntimeError: If the checking process ended without an answer (its output, above,
                says why).
        """
        if self._process is not None:
            assert self._process.stdout is not None
            answer = self._process.stdout.read()
            self._process.wait()
            if self._process.returncode != 0 or not answer:
                raise RuntimeError(f"the check of the sweep's classes ended with exit code "
                                   f"{self._process.returncode}, without an answer")
            self._error, self._warnings, self.emulated = pickle.loads(answer)
        if self._error is not None:
            raise self._error
        for warning in self._warnings:
            logger.warning("%s", warning)

    def __enter__(self) -> ClassCheck:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


def _check(spec: SweepSpec, local: bool
           ) -> tuple[SweepError | None, list[str], tuple[list[str], float]]:
    """The check's error (raised where it is waited for), its warnings, and the precisions of
    a native_precisions sweep that this CPU emulates, with its slowdown."""
    try:
        # check_values: asked as the check was made (ClassCheck's first step).
        return (None, check_launch(spec, local=local, values_checked=True),
                emulated_precisions(spec) if local else ([], 1.0))
    except SweepError as found:  # anything else is a bug, shown with its traceback
        return found, [], ([], 1.0)


def _answer(answer: IO[bytes]) -> None:
    path, inner = pickle.load(sys.stdin.buffer)
    sys.path[:] = path
    spec, local = pickle.loads(inner)
    answer.write(pickle.dumps(_check(spec, local)))


if __name__ == "__main__":
    # The answer on the real stdout; what the user's modules print goes to stderr, the console.
    with os.fdopen(os.dup(1), "wb") as real_stdout:
        os.dup2(2, 1)
        _answer(real_stdout)
