from __future__ import annotations

import errno
import pickle

from ray.exceptions import RayTaskError
from ray.train import WorkerGroupError

from tuning.errors import StorageFullError, is_storage_full


def test_a_full_device_is_found_however_deep_ray_wrapped_it() -> None:
    full = OSError(errno.ENOSPC, "No space left on device")
    in_worker = WorkerGroupError("worker 1 failed", {0: ValueError("collateral"), 1: full})
    assert is_storage_full(RayTaskError("run_trial", "traceback...", in_worker))
    try:
        try:
            raise full
        except OSError:
            raise RuntimeError("while saving") from None  # context, not cause, still counts
    except RuntimeError as chained:
        assert is_storage_full(chained)


def test_pyarrow_errors_without_errno_are_recognised_by_their_message() -> None:
    assert is_storage_full(OSError("Error writing bytes to file. Detail: [errno 28] No space "
                                   "left on device"))


def test_other_errors_are_not_a_full_device() -> None:
    assert not is_storage_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_storage_full(WorkerGroupError("failed", {0: FloatingPointError("nan")}))


def test_storage_full_error_names_the_fix_and_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(StorageFullError("/mnt/runs/x")))
    assert error.experiment == "/mnt/runs/x"
    assert "lightsweep resume /mnt/runs/x" in str(error)
