"""The trial driver: what it starts per trial, and what it imports."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import sysconfig

import pytest
import ray.train
from ray.train import WorkerGroupError
from ray.train.torch import TorchTrainer

from tuning._internals import autoscaler, cleaner, controller, placement_groups, probe
from tuning._internals import trainer as layered_trainer
from tuning._internals.torch_backend import lazy_torch_config_class
from tuning._internals.trainer import LayeredTorchTrainer
from tuning.record.layout import TRIAL_DIR_PREFIX, USER_ERROR_FILE


def _noop(config: dict) -> None:
    pass


def _fresh_python(code: str) -> str:
    """What ``code`` prints in a new interpreter, whose imports are its own."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _needs(name: str) -> None:
    """Skips a test of layer ``name`` on a Ray older than what it changes."""
    if not probe.applies(name):
        pytest.skip(f"the installed Ray has nothing for {name} to change")


def _layer(monkeypatch: pytest.MonkeyPatch, name: str, on: bool) -> None:
    """Layer ``name`` on or off in this process, for the test."""
    monkeypatch.setitem(probe._VERDICTS, name, None if on else "off in a test")


def _controller_class(monkeypatch: pytest.MonkeyPatch, cls: type | None) -> None:
    """Train's controller class, as the layer runs it in the trial's process (None: off)."""
    from ray.train.v2._internal.execution import controller as train_controller

    _layer(monkeypatch, controller.LAYER, cls is not None)
    if cls is not None:
        monkeypatch.setattr(train_controller, "TrainController", cls)


def _default_callbacks(trainer_cls: type[TorchTrainer]) -> list[object]:
    trainer = trainer_cls(_noop, scaling_config=ray.train.ScalingConfig(num_workers=1))
    return trainer._create_default_callbacks()


def test_a_trial_starts_no_dataset_manager_actor() -> None:
    _needs("no-dataset-manager")
    from ray.train.v2._internal.callbacks.datasets import DatasetsCallback

    # Ray's own trainer does start one per run (if this fails, Ray changed: drop the subclass).
    assert any(isinstance(c, DatasetsCallback) for c in _default_callbacks(TorchTrainer))
    lean = _default_callbacks(LayeredTorchTrainer)
    assert not any(isinstance(c, DatasetsCallback) for c in lean)
    assert len(lean) == len(_default_callbacks(TorchTrainer)) - 1


def test_the_lean_trainer_is_ray_torch_trainer_in_all_but_its_lazy_imports() -> None:
    from ray.train.torch import TorchConfig

    LazyTorchConfig = lazy_torch_config_class()
    for use_gpu, backend in ((False, "gloo"), (True, "nccl")):
        scaling = ray.train.ScalingConfig(num_workers=1, use_gpu=use_gpu)
        ours = LayeredTorchTrainer(_noop, scaling_config=scaling).backend_config
        theirs = TorchTrainer(_noop, scaling_config=scaling).backend_config
        assert isinstance(ours, LazyTorchConfig) and isinstance(theirs, TorchConfig)
        fields = ("backend", "init_method", "timeout_s")
        assert [getattr(ours, f) for f in fields] == [getattr(theirs, f) for f in fields]
        assert theirs.backend == backend
        if hasattr(type(theirs), "framework"):  # Ray 2.55+ asks a config its framework
            assert ours.framework == theirs.framework
        assert (ours.backend_cls.share_cuda_visible_devices
                == theirs.backend_cls.share_cuda_visible_devices)


def test_building_a_trials_trainer_imports_no_torch() -> None:
    # The trial's driver only builds the trainer; torch would cost it 300 MB and a second.
    code = ("import sys, ray.train, tuning.trial.driver as d; "
            "t = d.trainer_class()(print, scaling_config=ray.train.ScalingConfig("
            "num_workers=1)); t._create_default_callbacks(); t._get_train_func(); "
            "print('torch' in sys.modules)")
    out = _fresh_python(code)
    assert out == "False"


def test_the_trial_driver_does_not_import_lightning() -> None:
    # Trial drivers and Train's controllers never train: Lightning would cost each seconds of
    # start-up and hundreds of MB. Only the workers import it (tuning.trial.worker).
    code = ("import sys, tuning.trial.driver, tuning.driver.sweep, tuning.cli; "
            "print(sorted(m for m in ('lightning', 'pytorch_lightning', 'torchvision') "
            "if m in sys.modules))")
    out = _fresh_python(code)
    assert out == "[]"


def test_an_inline_retry_of_a_trial_whose_code_raised_fails_without_importing_torch(
        tmp_path) -> None:
    # Tune gives a retry a new process; the user's error would only happen again there, and
    # importing torch and Lightning first would cost it ~10 CPU-seconds.
    trial_dir = tmp_path / f"{TRIAL_DIR_PREFIX}t1"
    trial_dir.mkdir()
    (trial_dir / USER_ERROR_FILE).write_text("FloatingPointError: loss is nan")
    code = ("import sys; from tuning.errors import RepeatedUserError; "
            "from tuning.record.location import Location; from tuning.trial import driver\n"
            "try:\n"
            f"    driver._fit_inline(None, Location.parse({str(tmp_path)!r}), 't1')\n"
            "except RepeatedUserError as error:\n"
            "    print('torch' in sys.modules, error)")
    assert _fresh_python(code).startswith("False FloatingPointError: loss is nan")


def _users_fit(loop_config: object, session: object) -> None:
    # The user's code (a file of theirs: this one) meets a missing file: it would again.
    open("/no/such/data/file.csv")  # noqa: SIM115


def _librarys_fit() -> object:
    """A fit whose OS error comes from an installed package (a storage client's, say)."""
    namespace: dict[str, object] = {}
    library_file = os.path.join(sysconfig.get_paths()["purelib"], "a_storage_client.py")
    exec(compile("def fit(config, session):\n    import os\n    os.stat('/no/such/storage')\n",
                 library_file, "exec"), namespace)
    return namespace["fit"]


@pytest.mark.parametrize("users", [False, True])
def test_an_inline_trial_notes_only_its_users_errors_and_retries_the_infrastructures(
        users: bool, tmp_path, monkeypatch) -> None:
    import tuning.trial.worker as worker
    from tuning.record.location import Location
    from tuning.trial import driver

    # The infrastructure failing outside the user's code may not happen again: not noted, so
    # Tune's retry runs the trial again; the user's code's error would, and is noted.
    monkeypatch.setattr(worker, "train_worker", _users_fit if users else _librarys_fit())
    (tmp_path / f"{TRIAL_DIR_PREFIX}t1").mkdir()
    with pytest.raises(FileNotFoundError):
        driver._fit_inline(None, Location.parse(str(tmp_path)), "t1")  # type: ignore[arg-type]
    note = tmp_path / f"{TRIAL_DIR_PREFIX}t1" / USER_ERROR_FILE
    assert note.exists() == users


def test_the_log_filter_every_ray_process_runs_imports_nothing_heavy() -> None:
    # Ray runs tuning.trial.ray_logs in every process of a sweep (controllers, actors, workers).
    code = ("import sys, tuning.trial.ray_logs; print(sorted(m for m in ('ray', 'torch', 'optuna', "
            "'pandas', 'pydantic') if m in sys.modules))")
    out = _fresh_python(code)
    assert out == "[]"


def test_workers_keep_lightnings_per_trial_logging_interval_warning_off_the_console() -> None:
    import warnings

    from tuning.trial.worker import _quiet_worker_logs

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _quiet_worker_logs()
        warnings.warn("The number of training batches (4) is smaller than the logging interval "
                      "Trainer(log_every_n_steps=50). Set a lower value for log_every_n_steps if "
                      "you want to see logs for the training epoch.", UserWarning, stacklevel=1)
        warnings.warn("a warning of the user's own", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["a warning of the user's own"]


def _failed(*failures: BaseException) -> WorkerGroupError:
    """A Train run's failure as ``trainer.fit()`` raises it: each rank's exception."""
    return WorkerGroupError("workers failed", dict(enumerate(failures)))


def _dead(cause: BaseException) -> BaseException:
    """A rank whose process died: it fails Train's health check, carrying the cause."""
    from ray.train.v2._internal.exceptions import WorkerHealthCheckFailedError

    return WorkerHealthCheckFailedError("health check failed", cause)


def test_a_dead_worker_is_retried_and_a_users_exception_is_not() -> None:
    from ray.exceptions import ActorDiedError

    from tuning.trial.driver import _retry_reason

    # One rank died, the other failed its collective because of it: a death, worth a retry.
    assert _retry_reason(_failed(_dead(ActorDiedError()), RuntimeError("NCCL"))) == "ActorDiedError"
    # The user's code raised on every rank: it would raise again.
    assert _retry_reason(_failed(ValueError("bad lr"), ValueError("bad lr"))) is None


def test_a_worker_that_died_while_the_controller_waited_on_it_is_retried() -> None:
    from ray.exceptions import ActorDiedError, OutOfMemoryError

    from tuning.trial.driver import _retry_reason

    # No rank's failure listed: the run failed on the actor's death itself (the chaos soak
    # met it, a worker killed while its group started).
    failed = RuntimeError("the worker group failed")
    failed.__cause__ = ActorDiedError()
    assert _retry_reason(failed) == "ActorDiedError"  # type: ignore[arg-type]
    killed = RuntimeError("the worker group failed")
    killed.__cause__ = OutOfMemoryError("memory monitor")
    assert _retry_reason(killed) is None  # type: ignore[arg-type]
    # Listed as its rank's failure, the death itself rather than a failed health check.
    assert _retry_reason(_failed(ActorDiedError(), RuntimeError("gloo"))) == "ActorDiedError"


def test_a_worker_killed_by_rays_memory_monitor_is_not_retried() -> None:
    from ray.exceptions import ActorDiedError, OutOfMemoryError

    from tuning.trial.driver import _retry_reason

    killed = _failed(_dead(OutOfMemoryError("memory monitor")), _dead(ActorDiedError()))
    assert _retry_reason(killed) is None


def test_a_resumed_run_resends_the_reports_the_sweep_never_recorded() -> None:
    from tuning.trial.lightning_compat import _EpochReport
    from tuning.trial.session import TrainSession

    reports = [{"epoch": float(e), "val/acc": e / 10} for e in (1, 2, 3, 4)]
    behind = _EpochReport(TrainSession(), known_epoch=2)  # the driver died before it recorded epochs 3 and 4
    behind.load_state_dict({"reports": reports})
    assert [r["epoch"] for r in behind._to_resend] == [3.0, 4.0]
    current = _EpochReport(TrainSession(), known_epoch=4)  # recorded all: the last one goes again, in case
    current.load_state_dict({"reports": reports})
    assert [r["epoch"] for r in current._to_resend] == [4.0]


def test_trains_controller_runs_in_the_trials_process_or_else_in_rays_own_actor(
        monkeypatch) -> None:
    from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer

    probe.forget()
    assert controller.runs_in_trial(), "Ray moved TrainController"
    ran: list[dict[str, object]] = []

    class FakeController:
        def __init__(self, **kwargs: object) -> None:
            ran.append(kwargs)

        async def run(self) -> None:
            pass

        def get_result(self) -> str:
            return "result of the loop run here"

    trainer = LayeredTorchTrainer(_noop, scaling_config=ray.train.ScalingConfig(
        num_workers=1))
    _controller_class(monkeypatch, FakeController)
    assert trainer._initialize_and_run_controller(a=1) == "result of the loop run here"
    assert ran == [{"a": 1}] and trainer.controller_ran_in == "trial"
    # A Ray without that class: Train's own controller actor, as Ray would start it.
    _controller_class(monkeypatch, None)
    monkeypatch.setattr(DataParallelTrainer, "_initialize_and_run_controller",
                        lambda self, **kwargs: ("actor", kwargs))
    assert trainer._initialize_and_run_controller(a=2) == ("actor", {"a": 2})
    assert trainer.controller_ran_in == "actor"


def test_runs_of_a_trial_process_share_its_synchronization_actor_or_else_start_their_own(
        monkeypatch) -> None:
    from ray.train.v2._internal.execution.worker_group import state, worker_group

    # Restored after the test: the replacement is for the whole process.
    monkeypatch.setattr(worker_group, "SynchronizationActor", worker_group.SynchronizationActor)
    monkeypatch.setattr(state, "_shutdown_sync_actor", state._shutdown_sync_actor)

    class FakeController:
        def __init__(self, **kwargs: object) -> None:
            pass

        async def run(self) -> None:
            pass

        def get_result(self) -> None:
            return None

    _controller_class(monkeypatch, FakeController)
    trainer = LayeredTorchTrainer(_noop, scaling_config=ray.train.ScalingConfig(
        num_workers=1))
    trainer._initialize_and_run_controller()
    assert trainer.synchronization_actor_per == "process"
    assert worker_group.SynchronizationActor is controller.REUSED_SYNCHRONIZATION_ACTOR
    # The run's end kills the run's own actors, not the one the process keeps.
    killed: list[object] = []
    monkeypatch.setattr(ray, "kill", killed.append)
    monkeypatch.setattr(controller.REUSED_SYNCHRONIZATION_ACTOR, "handle", "kept")
    state._shutdown_sync_actor("kept")
    state._shutdown_sync_actor("a run's own")
    assert killed == ["a run's own"]

    # A Ray whose worker group stops its actor otherwise: each run starts its own, as Ray does.
    monkeypatch.setattr(worker_group, "SynchronizationActor", ray)  # no actor class
    probe._VERDICTS.pop(controller.SYNC_LAYER, None)
    trainer._initialize_and_run_controller()
    assert trainer.synchronization_actor_per == "run"


def test_a_one_worker_run_gets_no_process_group_and_its_controller_no_torch() -> None:
    code = ("import sys; from tuning._internals.torch_backend import lazy_torch_config_class as L; "
            "C = L(); c = C('gloo'); B = c.backend_cls; "
            "G = type('G', (), {'__len__': lambda self: 1}); b = B(); "
            "b.on_start(G(), c); b.on_training_start(G(), c); b.on_shutdown(G(), c); "
            "print('torch' in sys.modules)")
    out = _fresh_python(code)
    assert out == "False"


def test_a_ddp_run_gets_rays_torch_process_group_with_the_same_settings(monkeypatch) -> None:
    import ray.train.torch.config as torch_config
    from ray.train.torch import TorchConfig

    calls: list[tuple[str, object]] = []

    class RaysBackend:
        def on_start(self, group: object, config: object) -> None:
            calls.append(("on_start", config))

        def on_training_start(self, group: object, config: object) -> None:
            calls.append(("on_training_start", config))

        def on_shutdown(self, group: object, config: object) -> None:
            calls.append(("on_shutdown", config))

    monkeypatch.setattr(torch_config, "_TorchBackend", RaysBackend)
    group = type("Group", (), {"__len__": lambda self: 2})()
    config = lazy_torch_config_class()(backend="nccl", timeout_s=60)
    backend = config.backend_cls()
    backend.on_start(group, config)
    backend.on_training_start(group, config)
    backend.on_shutdown(group, config)
    assert [name for name, _ in calls] == ["on_start", "on_training_start", "on_shutdown"]
    assert all(c == TorchConfig(backend="nccl", timeout_s=60) for _, c in calls)


def test_a_run_whose_trial_tune_stopped_ends_in_place_leaving_the_process_to_reuse(
        monkeypatch) -> None:
    from ray.train.v2._internal.execution.controller import TrainController
    from ray.train.v2._internal.execution.controller.state import AbortedState

    # What ending a run in place uses of Train's controller: abort() but for exit_actor().
    for name in ("get_state", "get_worker_group", "_set_state", "abort", "run"):
        assert hasattr(TrainController, name), f"Ray moved TrainController.{name}"
    events: list[str] = []

    class Group:
        def abort(self) -> None:  # kills the workers, removes their placement group
            events.append("workers aborted")

    class Hooks:
        def invoke_best_effort(self, hook: str) -> None:  # stops the cleaner, among others
            events.append(hook)

    class StoppedByTune:
        def __init__(self, **kwargs: object) -> None:
            self._controller_callback_manager = Hooks()

        async def run(self) -> None:
            raise SystemExit(0)  # what tune.report raises, in ReportToTune, once Tune stopped it

        def get_state(self) -> object:
            return type("Running", (), {"is_terminal": lambda self: False})()

        def get_worker_group(self) -> Group:
            return Group()

        def _set_state(self, state: object) -> None:
            events.append(type(state).__name__)

    trainer = LayeredTorchTrainer(_noop, scaling_config=ray.train.ScalingConfig(
        num_workers=1))
    _controller_class(monkeypatch, StoppedByTune)
    try:
        trainer._initialize_and_run_controller()
    except SystemExit as ended:
        assert ended.code == 0
    else:
        raise AssertionError("the stopped trial's function went on")
    # The workers (and their placement group) first: the cleaner frees them if Tune ends this
    # process before they are gone.
    assert events == ["workers aborted", "before_controller_abort", AbortedState.__name__]


def test_a_run_reports_to_tune_in_the_trials_thread_or_else_through_rays_queue(
        monkeypatch) -> None:
    sent: list[dict[str, object]] = []
    monkeypatch.setattr(layered_trainer.tune, "report", sent.append)
    _layer(monkeypatch, controller.LAYER, True)
    direct = layered_trainer.ReportToTune()  # the controller runs in the trial's process: no queue actor
    assert direct.direct and not hasattr(direct, "_training_actor_item_queue")
    checkpoint = ray.train.Checkpoint("/runs/exp/trial_a/train/checkpoint_1")
    direct.after_report(None, [{"val/acc": 0.5}, {"val/acc": 0.4}], checkpoint)
    direct.after_report(None, [{"val/acc": 0.6}], None)
    assert sent == [{"val/acc": 0.5, "checkpoint_path": "/runs/exp/trial_a/train/checkpoint_1"},
                    {"val/acc": 0.6}]  # rank 0's, as Ray's callback sends
    direct.wait_until_taken()  # returns at once: tune.report returned once Tune took it
    _controller_class(monkeypatch, None)
    with pytest.raises(RuntimeError, match="Tune session"):  # Ray's own, outside a trial
        layered_trainer.ReportToTune()


def test_where_the_sweeps_driver_removes_placement_groups_a_run_starts_no_cleaner(
        monkeypatch) -> None:
    _needs("no-dataset-manager")  # and Train's cleaner per run, which came before it
    from ray.train.v2._internal.callbacks.placement_group_callback import (
        PlacementGroupCleanerCallback,
    )

    ray_callbacks = _default_callbacks(TorchTrainer)
    monkeypatch.setenv(placement_groups.PLACEMENT_GROUPS_ENV, "driver")  # what a sweep's driver sets
    layered = LayeredTorchTrainer(_noop, scaling_config=ray.train.ScalingConfig(num_workers=1))
    lean = layered._create_default_callbacks()
    assert not any(isinstance(c, PlacementGroupCleanerCallback) for c in lean)
    assert layered.placement_groups_removed_by == "driver"
    # Only the cleaner (and the dataset manager) dropped: Ray's other callbacks all kept.
    assert len(lean) == len(ray_callbacks) - 2
    # Whether or not Train's controller runs in the trial's process: the driver removes the
    # group of any dead maker, the controller actor's too.
    _controller_class(monkeypatch, None)
    assert not any(isinstance(c, PlacementGroupCleanerCallback)
                   for c in _default_callbacks(LayeredTorchTrainer))


def test_one_placement_group_cleaner_serves_every_run_of_a_trial_process(monkeypatch) -> None:
    _needs("cleaner-per-process")
    from ray.exceptions import RayActorError
    from ray.train.v2._internal.callbacks.placement_group_callback import (
        PlacementGroupCleanerCallback,
    )

    CleanerPerProcess = cleaner.cleaner_per_process_class()
    # A sweep whose driver cannot remove dead trials' placement groups (Ray Client, say).
    monkeypatch.delenv(placement_groups.PLACEMENT_GROUPS_ENV, raising=False)
    # Ray's default trainer has the per-run callback this replaces (else Ray moved it).
    assert any(type(c) is PlacementGroupCleanerCallback for c in _default_callbacks(TorchTrainer))
    layered = LayeredTorchTrainer(_noop, scaling_config=ray.train.ScalingConfig(num_workers=1))
    lean = layered._create_default_callbacks()
    assert sum(isinstance(c, CleanerPerProcess) for c in lean) == 1
    assert not any(type(c) is PlacementGroupCleanerCallback for c in lean)
    assert layered.placement_groups_removed_by == "cleaner per process"
    # Where Train's controller runs in an actor of its own (a Ray without that class), one
    # cleaner per run, as Ray does.
    _controller_class(monkeypatch, None)
    assert not any(isinstance(c, CleanerPerProcess)
                   for c in _default_callbacks(LayeredTorchTrainer))

    class Cleaner:  # Train's detached cleaner actor, as its handle answers
        def __init__(self, name: str) -> None:
            self.name, self.dead, self.stopped = name, False, False
            self.start_monitoring = type("Method", (), {"remote": lambda _: self})()
            self.stop = type("Method", (), {"remote": lambda _: self._stop()})()

        def _stop(self) -> Cleaner:
            self.stopped = True
            return self

    started: list[Cleaner] = []
    watched = ["trial-actor-1"]

    def start(self: PlacementGroupCleanerCallback, context: object) -> None:  # Ray's: a new actor
        self._controller_actor_id = watched[0]
        self._cleaner = Cleaner(f"cleaner {len(started) + 1}")
        started.append(self._cleaner)

    def get(handle: Cleaner, timeout: float) -> bool:
        if handle.dead:
            raise RayActorError()
        return True

    monkeypatch.setattr(PlacementGroupCleanerCallback, "after_controller_start", start)
    monkeypatch.setattr(ray, "get", get)
    monkeypatch.setattr(ray, "get_runtime_context", lambda: type(
        "Context", (), {"get_actor_id": lambda _: watched[0]})())
    monkeypatch.setattr(CleanerPerProcess, "_of_process", None)

    def run(end: str = "shutdown") -> str:
        callback = CleanerPerProcess()
        callback.after_controller_start(None)
        if end == "shutdown":
            asyncio.run(callback.before_controller_shutdown())
        else:
            callback.before_controller_abort()
        return callback._cleaner.name

    # A process's runs, one ending normally, one stopped by Tune, one after: one cleaner.
    assert [run(), run("abort"), run()] == ["cleaner 1"] * 3
    assert not started[0].stopped
    # A cleaner gone (its node lost): the next run starts another.
    started[0].dead = True
    assert run() == "cleaner 2"
    # A controller that is another actor (Ray's own, per run): a cleaner of its own.
    watched[0] = "trial-actor-2"
    assert run() == "cleaner 3" and len(started) == 3


def test_a_run_on_a_local_ray_asks_no_autoscaler_for_its_workers(monkeypatch) -> None:
    _needs("no-autoscaler-requests")
    from ray.train.v2._internal.execution.scaling_policy import ResizeDecision, create_scaling_policy

    given: list[object] = []

    class Controller:  # takes the policy the trial's controller would run with
        def __init__(self, scaling_policy: object) -> None:
            given.append(scaling_policy)

        async def run(self) -> None:
            pass

        def get_result(self) -> None:
            return None

    _controller_class(monkeypatch, Controller)
    scaling = ray.train.ScalingConfig(num_workers=2)
    layered = LayeredTorchTrainer(_noop, scaling_config=scaling)
    monkeypatch.setenv(autoscaler.AUTOSCALER_REQUESTS_ENV, "0")  # what a local sweep sets
    layered._initialize_and_run_controller(scaling_policy=create_scaling_policy(scaling))
    monkeypatch.delenv(autoscaler.AUTOSCALER_REQUESTS_ENV)  # a cluster's sweep: Ray's own policy
    layered._initialize_and_run_controller(scaling_policy=create_scaling_policy(scaling))
    assert type(given[0]) is autoscaler._policy_class()
    assert type(given[1]) is type(create_scaling_policy(scaling))
    # The same decisions, and the coordinator never reached (Ray's policy reaches it at once).
    from ray.train.v2._internal.execution.scaling_policy import autoscaling_coordinator_client

    reached: list[str] = []
    monkeypatch.setattr(autoscaling_coordinator_client, "get_or_create_autoscaling_coordinator",
                        lambda: reached.append("coordinator"))
    context = type("RunContext", (), {"run_id": "run-1"})()
    lean = given[0]
    lean.after_controller_start(context)
    decision = lean.make_decision_for_non_running_worker_group()
    assert isinstance(decision, ResizeDecision) and decision.num_workers == 2
    asyncio.run(lean.before_controller_shutdown())
    assert reached == []
    given[1].after_controller_start(context)  # Ray's (it logs that the request failed)
    assert reached == ["coordinator"]
