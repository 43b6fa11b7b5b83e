"""What the sweep's driver keeps out of its memory: torch.

The driver schedules trials and keeps their record; it never holds a tensor. torch (0.4 GB of
memory and seconds of start-up, measured in bench/) comes in only where something imports it
for a reason the driver does not have: the user's classes (checked in a process of their own
while Ray starts, :mod:`tuning.driver.class_check`) and Ray Tune's default TensorBoard logger,
below.
"""

from __future__ import annotations

import importlib
import sys


def import_tensorboardx_without_torch() -> None:
    """Imports tensorboardX, for Ray Tune's default TensorBoard logger, without torch.

    tensorboardX's writer imports torch, when it is installed, only to name the type its
    methods accept besides numpy arrays; a torch tensor handed to it is converted by a function
    that imports torch itself. Tune logs the trials' numbers. So tensorboardX is imported once
    here with torch hidden (an import of it fails as if it were not installed), and Tune's logger
    finds it imported. Without tensorboardX installed, Tune goes without TensorBoard files as
    ever.
    """
    if "tensorboardX" in sys.modules or "torch" in sys.modules:
        return
    sys.modules["torch"] = None  # type: ignore[assignment]  # Python's way to make an import fail
    try:
        importlib.import_module("tensorboardX")
    except ImportError:
        pass  # not installed: Tune warns and writes no TensorBoard files
    finally:
        del sys.modules["torch"]
