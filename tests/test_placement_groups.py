"""The sweep's driver removes the placement groups of processes that died (a Train trial's
process makes its run's group), and only those: on a real Ray, with real actors."""

from __future__ import annotations

import time

import pytest

from tests.processes import wait_for

pytestmark = [pytest.mark.ray]


@pytest.mark.timeout(120)
def test_the_group_of_a_dead_maker_is_removed_and_only_that_one(ray_session) -> None:
    import ray
    from ray.util import placement_group, placement_group_table, remove_placement_group

    from tuning.driver.placement_groups import (
        CHECK_INTERVAL_S,
        removing_dead_trials_placement_groups,
    )

    @ray.remote(num_cpus=0)
    class Maker:  # as a Train trial's process makes its run's group
        def make(self) -> str:
            group = placement_group([{"CPU": 1}])
            ray.get(group.ready())
            return str(group.id.hex())

    def state(group_id: str) -> str:
        return str(placement_group_table()[group_id]["state"])

    doomed, alive = Maker.remote(), Maker.remote()  # type: ignore[attr-defined]
    doomed_group, alive_group = ray.get([doomed.make.remote(), alive.make.remote()])
    own = placement_group([{"CPU": 0.01}])  # the driver's own, as Tune's trials' groups
    with removing_dead_trials_placement_groups(wait_at_end_s=0):
        ray.kill(doomed)
        # Ray alone keeps it: its maker's job, this one, still runs.
        time.sleep(0.3)
        assert ray.available_resources().get("CPU", 0) < 1
        killed_at = time.monotonic()
        wait_for(lambda: state(doomed_group) == "REMOVED", 10 * CHECK_INTERVAL_S,
                 "the dead maker's group removed")
        assert time.monotonic() - killed_at < 3 * CHECK_INTERVAL_S
        time.sleep(2 * CHECK_INTERVAL_S)  # two more looks: the others stay
        assert (state(alive_group), state(own.id.hex())) == ("CREATED", "CREATED")
    # What a process that dies as the sweep ends leaves is removed on the way out (Tune ends
    # the trials' processes as it returns).
    with removing_dead_trials_placement_groups():
        ray.kill(alive)
    assert state(alive_group) == "REMOVED" and state(own.id.hex()) == "CREATED"
    remove_placement_group(own)
