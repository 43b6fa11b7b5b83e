"""The placement groups of Train runs whose process died, removed by the sweep's driver.

A Train trial's process makes its run's placement group (Train's controller runs there), and
Ray keeps a group an actor made until the actor's job ends too: a trial process that died in
mid-run (Tune ended it, the OOM killer did, it crashed) would hold its workers' CPUs and GPUs
for the rest of the sweep, and on a full machine later trials would wait forever. Ray Train's
own answer is a cleaner per run, a process that asks the dashboard each second whether the
run's controller lives. Here the sweep's driver looks each second for groups whose maker died
(:func:`tuning._internals.placement_groups.actors_placement_groups`) and removes them: no
process per trial and no dashboard.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator

from ray.exceptions import RayError
from ray.util.placement_group import remove_placement_group

from tuning._internals.placement_groups import PLACEMENT_GROUPS_ENV, actors_placement_groups, can_list

logger = logging.getLogger(__name__)

# As often as Ray Train's cleaner asks whether a run's controller lives.
CHECK_INTERVAL_S = 1.0


def driver_removes_placement_groups(address: str | None) -> bool:
    """Whether a sweep whose driver joins ``address`` (None: a local Ray) removes the placement
    groups of dead Train trial processes itself; if not, each trial process keeps Train's
    cleaner (and a local Ray its dashboard, which the cleaner asks). ``LIGHTSWEEP_PLACEMENT_GROUPS``
    set to anything but ``driver`` in the launching environment leaves it to Train's cleaner."""
    return (os.environ.get(PLACEMENT_GROUPS_ENV, "driver") == "driver"
            and can_list(address))


def remove_dead_makers_placement_groups() -> tuple[int, int]:
    """Removes every placement group that outlived the actor of this job that made it.

    Returns:
        How many it removed, and how many groups of live actors remain.
    """
    groups = actors_placement_groups()
    dead = [group for group, maker_dead in groups if maker_dead]
    for group in dead:
        remove_placement_group(group)  # one removed meanwhile is no error
    if dead:
        logger.debug("removed %d placement groups of dead trial processes", len(dead))
    return len(dead), len(groups) - len(dead)


@contextlib.contextmanager
def removing_dead_trials_placement_groups(wait_at_end_s: float = 5.0) -> Iterator[None]:
    """Removes, each :data:`CHECK_INTERVAL_S` in a thread of the driver while the block runs (the
    sweep's Tuner), the placement groups of trial processes that died; then, as the block ends,
    what the processes Tune ended with its run (interrupted, out of time) left, waiting up to
    ``wait_at_end_s`` for those still ending.

    A thread, not a Tune callback: Tune pickles its callbacks with the experiment, and a sweep
    resumed by a later lightsweep would run the earlier one's."""
    done = threading.Event()

    def check_each_interval() -> None:
        while not done.wait(CHECK_INTERVAL_S):
            _look_once()

    thread = threading.Thread(target=check_each_interval, name="lightsweep-placement-groups",
                              daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        deadline = time.monotonic() + wait_at_end_s
        while _look_once() and time.monotonic() < deadline:
            time.sleep(0.2)


def _look_once() -> int:
    """:func:`remove_dead_makers_placement_groups`, once; returns how many groups of live actors
    remain (0 where the GCS did not answer: the sweep's own error, if any, is what to show)."""
    try:
        return remove_dead_makers_placement_groups()[1]
    except RayError as error:  # the GCS unreachable a moment: ask again next time
        logger.warning("could not look for placement groups of dead trials: %s", error)
        return 0
