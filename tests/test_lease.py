"""One driver per experiment: a second driver on a live experiment is refused, naming where the
live one runs; a lease whose holder is gone is taken over, with one line saying so."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from tuning.driver import lease as lease_module
from tuning.driver.lease import DriverLease, Holder
from tuning.errors import SweepError
from tuning.record.layout import LEASE_FILE
from tuning.record.location import Location


def _write(experiment: Path, holder: Holder) -> None:
    (experiment / LEASE_FILE).parent.mkdir(parents=True, exist_ok=True)
    (experiment / LEASE_FILE).write_text(json.dumps(asdict(holder)))


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    return tmp_path / "runs" / "sweep"


@pytest.fixture(autouse=True)
def _quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lease_module, "SETTLE_S", 0.05)


def test_a_second_driver_is_refused_naming_the_first_and_takes_it_once_released(
        experiment: Path) -> None:
    refusal = (rf"another driver runs this experiment \(process \d+ on "
               rf"{socket.gethostname()}, heartbeat 0 s ago\)")
    with DriverLease(Location.parse(experiment)), pytest.raises(SweepError, match=refusal):
        DriverLease(Location.parse(experiment)).acquire()
    assert not (experiment / LEASE_FILE).exists()  # released
    with DriverLease(Location.parse(experiment)):
        assert (experiment / LEASE_FILE).exists()


def test_a_dead_drivers_lease_on_this_host_is_taken_over_at_once(
        experiment: Path, caplog: pytest.LogCaptureFixture) -> None:
    ended = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    started = lease_module.process_start(ended.pid)
    assert started is not None
    ended.wait()
    _write(experiment, Holder(socket.gethostname(), ended.pid, started, time.time(), "old"))
    with caplog.at_level(logging.WARNING), DriverLease(Location.parse(experiment)) as taken:
        assert json.loads((experiment / LEASE_FILE).read_text())["token"] == taken.holder.token
    assert f"taking over the experiment from its last driver: process {ended.pid} on " \
           f"{socket.gethostname()} has ended" in caplog.text


def test_a_reused_process_id_is_not_taken_for_the_driver(experiment: Path) -> None:
    me = Holder.of_this_process()
    _write(experiment, replace(me, started=me.started - 3600, token="old"))  # same pid, older
    with DriverLease(Location.parse(experiment)):
        pass


def test_a_driver_elsewhere_holds_until_its_heartbeat_is_stale(
        experiment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = Holder("other-host", 1, 0.0, time.time(), "old")
    _write(experiment, elsewhere)
    with pytest.raises(SweepError, match="process 1 on other-host, heartbeat 0 s ago"):
        DriverLease(Location.parse(experiment)).acquire()
    _write(experiment, replace(elsewhere, heartbeat=time.time() - 61))
    with DriverLease(Location.parse(experiment)):
        pass
    # A platform's rerun waits for the lost host's heartbeat to go stale, then takes over.
    monkeypatch.setenv(lease_module.STALE_ENV, "1")
    _write(experiment, replace(elsewhere, heartbeat=time.time()))
    start = time.monotonic()
    with DriverLease(Location.parse(experiment), wait_s=10):
        assert 0.9 < time.monotonic() - start < 5


def test_the_heartbeat_renews_the_lease(experiment: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lease_module, "HEARTBEAT_S", 0.1)
    with DriverLease(Location.parse(experiment)):
        first = json.loads((experiment / LEASE_FILE).read_text())["heartbeat"]
        time.sleep(0.5)
        later = json.loads((experiment / LEASE_FILE).read_text())["heartbeat"]
    assert later > first


def test_the_lease_lives_in_cloud_storage_too(s3_bucket: str) -> None:
    where = Location.parse(f"{s3_bucket}/runs/sweep")
    with DriverLease(where):
        assert (where / LEASE_FILE).is_file()
        with pytest.raises(SweepError, match="another driver runs this experiment"):
            DriverLease(where).acquire()
    assert not (where / LEASE_FILE).exists()
