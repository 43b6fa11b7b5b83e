"""One driver per experiment: a lease in the experiment's storage, renewed by a heartbeat.

``launch`` and ``resume`` hold the experiment's lease while they run: a file in its storage
(local or cloud) naming the host and process that drive it, rewritten every
:data:`HEARTBEAT_S` seconds. A second driver on a live experiment is refused. A lease whose
holder is gone is taken over, with one line saying so: on the same host, when its process is
dead (or another process has its id); elsewhere, when its heartbeat is older than
``stale_after_s`` (:data:`STALE_AFTER_S` by default, ``LIGHTSWEEP_LEASE_STALE_S``).

Taking a lease writes it, then reads it back after a moment: of two drivers that took it at once,
the one whose write did not last sees the other's and stops. A local lease is created
exclusively (``O_EXCL``), so two drivers on one file system cannot both create it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from tuning.errors import SweepError
from tuning.record.layout import LEASE_FILE
from tuning.record.location import Location

logger = logging.getLogger(__name__)

HEARTBEAT_S = 10.0
STALE_AFTER_S = 60.0
STALE_ENV = "LIGHTSWEEP_LEASE_STALE_S"
# How long a driver waits, after writing the lease, before reading it back.
SETTLE_S = 0.5


@dataclass(frozen=True)
class Holder:
    """Who holds an experiment's lease.

    Attributes:
        host: The driver's host name.
        pid: Its process id there.
        started: The process's start (:func:`process_start`), so that a new process given the
            same id is not taken for it.
        heartbeat: When the lease was last renewed (epoch seconds).
        token: This holding's own id.
    """

    host: str
    pid: int
    started: float
    heartbeat: float
    token: str

    @classmethod
    def of_this_process(cls) -> Holder:
        return cls(host=socket.gethostname(), pid=os.getpid(),
                   started=process_start(os.getpid()) or 0.0, heartbeat=time.time(),
                   token=uuid.uuid4().hex)

    def where(self) -> str:
        return f"process {self.pid} on {self.host}"


def process_start(pid: int) -> float | None:
    """When process ``pid`` started, in clock ticks since boot (Linux's /proc; 0 where there is
    none to read), or None when no such process runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it runs, as another user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # The command's name, in parentheses, may hold spaces: the fields follow its last ")".
    return float(stat.rsplit(")", 1)[1].split()[19])


def stale_after_s() -> float:
    """How old a foreign host's heartbeat may be before its lease is taken over."""
    return float(os.environ.get(STALE_ENV) or STALE_AFTER_S)


def gone_because(holder: Holder, now: float, stale_s: float) -> str | None:
    """Why ``holder`` no longer drives its experiment, or None while it may."""
    if holder.host == socket.gethostname():
        started = process_start(holder.pid)
        if started is None:
            return f"{holder.where()} has ended"
        if started and holder.started and started != holder.started:
            return f"{holder.where()} has ended (another process has its id)"
        return None
    age = now - holder.heartbeat
    if age > stale_s:
        return f"{holder.where()} sent no heartbeat for {age:.0f} s"
    return None


class DriverLease:
    """The lease of one experiment, for this process.

    Use as a context manager: entering takes the lease (or raises), a heartbeat thread renews
    it, leaving releases it.

    Args:
        experiment: The experiment directory (or cloud URI).
        wait_s: How long to wait for a live holder elsewhere to go stale before refusing
            (a platform's rerun of a driver whose host was lost waits for its heartbeat to stop).
    """

    def __init__(self, experiment: Location, wait_s: float = 0.0) -> None:
        self.file = experiment / LEASE_FILE
        self.experiment = experiment
        self.wait_s = wait_s
        self.holder = Holder.of_this_process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # A local experiment directory that the lease made: removed with it if left empty (a
        # sweep refused before it wrote anything leaves nothing behind).
        self._made: list[Path] = []

    def _read(self) -> Holder | None:
        try:
            data: Any = self.file.read_json()
        except (FileNotFoundError, OSError, json.JSONDecodeError):
            return None
        try:
            return Holder(**data)
        except TypeError:
            return None  # not a lease this lightsweep wrote: treated as none

    def _write(self, exclusive: bool) -> bool:
        data = json.dumps(asdict(self.holder)).encode()
        if exclusive and self.file.is_local:
            path = Path(self.file.uri)
            self._made = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            return True
        self.file.write_bytes(data)
        return True

    def _refusal(self, holder: Holder) -> SweepError:
        age = time.time() - holder.heartbeat
        return SweepError(
            f"{self.experiment}: another driver runs this experiment ({holder.where()}, heartbeat "
            f"{age:.0f} s ago). Fix: wait for it to end, or stop it; a driver whose process "
            f"ended is taken over at once on its host, one elsewhere once its heartbeat is "
            f"{stale_after_s():.0f} s old")

    def acquire(self) -> None:
        """Takes the lease.

        Raises:
            SweepError: If a live driver holds it, naming where it runs.
        """
        deadline = time.time() + self.wait_s
        while True:
            current = self._read()
            if current is None:
                if self._write(exclusive=True):
                    break
                continue  # created by another driver meanwhile: look at it
            reason = gone_because(current, time.time(), stale_after_s())
            if reason is not None:
                logger.warning("%s: taking over the experiment from its last driver: %s",
                               self.experiment, reason)
                self._write(exclusive=False)
                break
            if time.time() >= deadline or current.host == socket.gethostname():
                raise self._refusal(current)
            time.sleep(min(1.0, max(0.1, deadline - time.time())))
        time.sleep(SETTLE_S)
        found = self._read()
        if found is None or found.token != self.holder.token:
            raise self._refusal(found or self.holder)
        self._thread = threading.Thread(target=self._beat, name="lightsweep-lease", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self.holder = Holder(**{**asdict(self.holder), "heartbeat": time.time()})
            with contextlib.suppress(OSError):  # a missed beat: the next one renews it
                self._write(exclusive=False)

    def release(self) -> None:
        """Stops the heartbeat and removes the lease, if it is still this process's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=HEARTBEAT_S)
        found = self._read()
        if found is not None and found.token == self.holder.token:
            with contextlib.suppress(OSError):
                self.file.remove()
        for folder in self._made:  # innermost first; rmdir refuses one that is not empty
            with contextlib.suppress(OSError):
                folder.rmdir()

    def __enter__(self) -> DriverLease:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.release()
