"""The exceptions lightsweep shows without a traceback: bad input, and a full storage."""

from __future__ import annotations

import errno
import functools
import os
import sysconfig
import traceback
from collections.abc import Iterator
from typing import TYPE_CHECKING

import cloudpickle

if TYPE_CHECKING:
    from ray.tune.experiment import Trial


# The exit code of a driver that a platform's notice (SIGTERM: a time limit, a requeue,
# preemption) stopped with the sweep saved: a job script requeues the job on it
# (tuning.platforms.slurm). EX_TEMPFAIL: "try again later".
REQUEUE_EXIT = 75


class SweepError(Exception):
    """Bad input: a sweep file, a command-line flag or an experiment directory.

    The message names the field and the fix; the CLI prints it and exits with code 2.
    """


class PreemptedError(Exception):
    """The platform's notice (SIGTERM) stopped the sweep, its state saved; the CLI exits with
    :data:`REQUEUE_EXIT`.

    Args:
        experiment: The experiment directory (or URI), which ``resume`` continues.
    """

    def __init__(self, experiment: str) -> None:
        super().__init__(
            f"the sweep stopped on a SIGTERM (a time limit, a requeue, preemption), its state "
            f"saved. Resume with: lightsweep resume {experiment} (or run the same "
            "launch ... --if-exists resume again)")
        self.experiment = experiment


class StorageFullError(Exception):
    """The experiment's storage ran out of space; the sweep stopped and can be resumed.

    Args:
        experiment: The experiment directory whose storage is full.
    """

    def __init__(self, experiment: str) -> None:
        super().__init__(
            f"no space left on the device that holds {experiment}; the sweep stopped there. "
            f"Fix: free space on that device (or lower checkpoints.num_to_keep), then run: "
            f"lightsweep resume {experiment}"
        )
        self.experiment = experiment

    def __reduce__(self) -> tuple[type, tuple[str]]:  # crosses Ray's process boundaries
        return (type(self), (self.experiment,))


class RepeatedUserError(Exception):
    """An inline trial retried after its own code raised: it fails at once with that error.

    Args:
        trial_id: The trial.
        error: The first error, as ``Type: message``.
    """

    def __init__(self, trial_id: str, error: str) -> None:
        super().__init__(f"{error} (trial {trial_id} raised it in an earlier attempt; "
                         "retrying the same code would raise it again)")
        self.trial_id, self.error = trial_id, error

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # crosses Ray's process boundaries
        return (type(self), (self.trial_id, self.error))


def ray_wrapped(error: BaseException) -> list[BaseException]:
    """What one of Ray's wrappers wraps: each worker's failure (Train's worker-group errors),
    then the single cause (task errors, controller failures, failed health checks)."""
    from tuning._internals.failures import WRAPPED_ATTRS

    found = [*(getattr(error, "worker_failures", None) or {}).values(),
             *(getattr(error, name, None) for name in WRAPPED_ATTRS)]
    return [e for e in found if isinstance(e, BaseException)]


def causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and everything it wraps: Python's chain and Ray's wrappers, every worker's."""
    pending, seen = [error], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        chained = [e for e in (current.__cause__, current.__context__) if e is not None]
        pending += [*chained, *ray_wrapped(current)]


def is_storage_full(error: BaseException) -> bool:
    """Whether ``error`` was caused by a full device (ENOSPC), however deeply Ray wrapped it."""
    return any(
        isinstance(e, StorageFullError)
        or (isinstance(e, OSError) and e.errno == errno.ENOSPC)
        # pyarrow's filesystem errors (Ray Train's checkpoint uploads) carry no errno.
        or "No space left on device" in str(e)
        for e in causes(error)
    )


@functools.cache
def _not_users() -> tuple[str, ...]:
    """Where code that is not the user's lives: Python's own library, installed packages,
    lightsweep (asked only when an error is classified: every process imports this module)."""
    return tuple(sorted({os.path.abspath(sysconfig.get_paths()[name]) + os.sep
                         for name in ("stdlib", "platstdlib", "purelib", "platlib")}
                        | {os.path.dirname(os.path.abspath(__file__)) + os.sep}))


def raised_through_users_code(error: BaseException) -> bool:
    """Whether ``error`` (or anything it wraps) passed through a frame of the user's own code
    (a file outside Python's library, the installed packages and lightsweep) on its way up."""
    for each in causes(error):
        for frame, _ in traceback.walk_tb(each.__traceback__):
            name = frame.f_code.co_filename
            if not name.startswith("<") and not os.path.abspath(name).startswith(_not_users()):
                return True
    return False


def is_infrastructure_error(error: BaseException) -> bool:
    """Whether ``error`` is the trial's infrastructure failing, not the user's code: an OS error
    (a dropped connection, an I/O error of shared storage) raised where no frame of the user's
    code was. Another attempt may well not meet it; an error of the user's code would recur."""
    return (any(isinstance(e, OSError) for e in causes(error))
            and not raised_through_users_code(error))


def is_unauthenticated(error: BaseException) -> bool:
    """Whether joining a Ray cluster failed for want of its authentication token. Ray reports
    it as a ConnectionError whose cause holds the AuthenticationError as text alone."""
    from ray.exceptions import AuthenticationError  # here: this module is imported everywhere

    return any(isinstance(e, AuthenticationError) or "InvalidAuthToken" in str(e)
               for e in causes(error))


def trial_error(trial: Trial) -> BaseException | None:
    """The exception a trial failed with.

    When Tune's error callbacks run, the pickled error is in the trial's local directory and not
    yet synced to storage (where ``Trial.get_pickled_error`` looks), so look there first.
    """
    local = trial.pickled_error_file
    if local and os.path.isfile(local):
        with open(local, "rb") as f:
            error: BaseException | None = cloudpickle.load(f)
        return error
    return trial.get_pickled_error()


# A trial's error as the leaderboard shows it: a long message's first and last characters.
SHOWN_CHARS = 200


def describe_error(error: BaseException | None) -> str:
    """``"ClassName: message"`` of the root cause of a trial's failure, as a traceback's last
    line says it: the whole message on one line (a long one by its first and last
    :data:`SHOWN_CHARS` characters).

    Unwraps Ray's wrappers (task errors, Train's worker-group errors) down to the exception the
    user's code raised.
    """
    seen = 0
    while error is not None and seen < 10:
        seen += 1
        wrapped = ray_wrapped(error)
        if not wrapped:
            break
        error = wrapped[0]
    if error is None:
        return "unknown error"
    if isinstance(error, RepeatedUserError):
        return error.error  # the cause is the first attempt's
    message = " ".join(line.strip() for line in str(error).strip().splitlines() if line.strip())
    if len(message) > 2 * SHOWN_CHARS:
        message = f"{message[:SHOWN_CHARS]} ... {message[-SHOWN_CHARS:]}"
    return f"{type(error).__name__}: {message}".rstrip(": ")
