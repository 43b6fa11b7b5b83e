"""The check of the user's classes: in a process of its own, run while Ray starts, or in the
driver's own when that has Lightning imported already."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import SweepWriter
from tests.processes import wait_for
from tuning.config.spec import load_spec
from tuning.driver.class_check import ClassCheck
from tuning.errors import SweepError


@pytest.mark.parametrize("in_process", [False, True])
def test_a_failed_check_raises_its_message_where_it_is_waited_for(
        write_sweep: SweepWriter, in_process: bool) -> None:
    spec = load_spec(write_sweep(module_args={"arch": "mlp", "input_shape": [8, 8], "widht": 32}))
    with (ClassCheck(spec, local=True, in_process=in_process) as check,
          pytest.raises(SweepError) as raised):
        check.wait()
    assert "module_args.widht: Classifier.__init__ takes no argument 'widht'" in str(raised.value)


def test_a_value_that_needs_no_class_is_refused_before_any_process_starts(
        write_sweep: SweepWriter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The user's module would say if it were imported: a wrong flag needs neither it nor Ray.
    _user_module(tmp_path, monkeypatch, "never_imported", WRITES_ITS_PID,
                 "from lightning_modules.classifier import Classifier as Module")
    spec = load_spec(write_sweep(module="never_imported:Module"), {"resources.workers_per_trial": 3})
    with pytest.raises(SweepError) as raised:
        ClassCheck(spec, local=True, in_process=False)
    assert "does not divide evenly over resources.workers_per_trial=3" in str(raised.value)
    assert not (tmp_path / "never_imported.pid").exists()


def _user_module(directory: Path, monkeypatch: pytest.MonkeyPatch, name: str, *lines: str) -> None:
    """The user's module ``name`` in ``directory``, importable here and, through this process's
    path, in the checking process."""
    (directory / f"{name}.py").write_text("".join(f"{line}\n" for line in lines))
    monkeypatch.syspath_prepend(str(directory))


WRITES_ITS_PID = ("import os, pathlib; "
                  "pathlib.Path(__file__).with_suffix('.pid').write_text(str(os.getpid()))")


def test_leaving_early_stops_a_check_still_running(
        write_sweep: SweepWriter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A user's module that takes long to import, as when the launch fails on something else
    # (its name taken, Ray refused) while the check still runs: no checker is left behind.
    _user_module(tmp_path, monkeypatch, "slow_module", WRITES_ITS_PID, "import time",
                 "time.sleep(300)")
    spec = load_spec(write_sweep(module="slow_module:Module"))
    pid_file = tmp_path / "slow_module.pid"
    with ClassCheck(spec, local=True, in_process=False):
        wait_for(pid_file.is_file, 120, "the check importing the slow module")
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_what_the_users_modules_print_does_not_garble_the_answer(
        write_sweep: SweepWriter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    _user_module(tmp_path, monkeypatch, "chatty", "print('hello from the user')",
                 "from lightning_modules.classifier import Classifier as Module")
    spec = load_spec(write_sweep(module="chatty:Module"))
    with ClassCheck(spec, local=True, in_process=False) as check:
        check.wait()
    assert "hello from the user" in capfd.readouterr().err


def test_a_driver_with_lightning_imported_checks_in_its_own_process(
        write_sweep: SweepWriter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # As a notebook that imported its model before launching: a new interpreter would only
    # import Lightning again (9-10 s on 2 cores).
    import lightning.pytorch  # noqa: F401

    _user_module(tmp_path, monkeypatch, "where", WRITES_ITS_PID,
                 "from lightning_modules.classifier import Classifier as Module")
    with ClassCheck(load_spec(write_sweep(module="where:Module")), local=True) as check:
        check.wait()
    assert int((tmp_path / "where.pid").read_text()) == os.getpid()
