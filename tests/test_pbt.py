"""Population-based training's decisions over Train trials, with fake Tune trials and a real
experiment directory: who exploits whom, what is copied, what the restarted trial is told."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ray.tune.integration.ray_train import CHECKPOINT_PATH_KEY

from tests.conftest import BASE_SWEEP
from tuning.config.spec import SweepSpec
from tuning.contracts import LINEAGE_KEY
from tuning.driver.pbt import TrainRunPBT, mutations, within_bounds
from tuning.record.layout import begin_generation, trial_path
from tuning.record.lineage import PBT_DIR, Exploit
from tuning.record.location import Location
from tuning.record.records import TrialRecord
from tuning.record.store import Ledger

PBT_SWEEP = {**BASE_SWEEP, "scheduler": {"name": "pbt", "max_epochs": 8,
                                         "perturbation_interval": 2, "quantile_fraction": 0.5,
                                         "resample_probability": 0.0}}


@dataclass(eq=False)  # hashed by identity, as Tune's trials are
class FakeTrial:
    """What PBT reads and changes of a Tune trial."""

    trial_id: str
    config: dict[str, Any]
    status: str = "RUNNING"
    experiment_tag: str = ""
    last_result: dict[str, Any] = field(default_factory=dict)

    def is_finished(self) -> bool:
        return False

    def set_config(self, config: dict[str, Any]) -> None:
        self.config = config

    def set_experiment_tag(self, tag: str) -> None:
        self.experiment_tag = tag


@dataclass
class FakeController:
    trials: list[FakeTrial]
    paused: list[str] = field(default_factory=list)
    search_alg: Any = None

    def get_trials(self) -> list[FakeTrial]:
        return self.trials

    def pause_trial(self, trial: FakeTrial, should_checkpoint: bool = True) -> None:
        self.paused.append(trial.trial_id)
        trial.status = "PAUSED"


def _checkpoint(experiment: Location, trial_id: str, epoch: int) -> str:
    directory = Path(trial_path(experiment, trial_id).uri) / "train" / f"checkpoint_{epoch:06d}"
    directory.mkdir(parents=True)
    (directory / "checkpoint.ckpt").write_text(f"{trial_id} epoch {epoch}")
    return directory.as_posix()


def _report(scheduler: TrainRunPBT, controller: FakeController, trial: FakeTrial,
            epoch: int, value: float, experiment: Location) -> str:
    trial.last_result = {"epoch": epoch, "val/acc": value,
                         CHECKPOINT_PATH_KEY: _checkpoint(experiment, trial.trial_id, epoch)}
    return scheduler.on_trial_result(controller, trial, trial.last_result)  # type: ignore[arg-type]


def _population(tmp_path: Path, spec: SweepSpec
                ) -> tuple[TrainRunPBT, FakeController, Location]:
    """A good and a bad trial under PBT, added as Tune adds them."""
    random.seed(0)
    experiment = Location.parse(tmp_path / "exp")
    scheduler = TrainRunPBT(spec, experiment)
    scheduler.set_search_properties("val/acc", "max")
    trials = [FakeTrial("good", {"module.lr": 0.01, "datamodule.batch_size": 32, "seed": 1}),
              FakeTrial("bad", {"module.lr": 0.05, "datamodule.batch_size": 64, "seed": 2})]
    controller = FakeController(trials)
    for trial in trials:
        scheduler.on_trial_add(controller, trial)  # type: ignore[arg-type]
    return scheduler, controller, experiment


@pytest.fixture
def sweep(tmp_path: Path) -> tuple[TrainRunPBT, FakeController, Location]:
    return _population(tmp_path, SweepSpec.model_validate(PBT_SWEEP))


def test_the_bottom_trial_continues_from_a_copy_of_the_top_trials_checkpoint(sweep) -> None:
    scheduler, controller, experiment = sweep
    good, bad = controller.trials
    _report(scheduler, controller, good, 2, 0.9, experiment)
    _report(scheduler, controller, bad, 2, 0.5, experiment)

    assert controller.paused == ["bad"]
    exploit = Exploit.of(bad.config)
    assert exploit is not None
    assert (exploit.generation, exploit.donor, exploit.epoch) == (1, "good", 2)
    copy = Path(exploit.checkpoint)
    assert copy == Path(trial_path(experiment, "bad").uri) / PBT_DIR / "001"
    assert (copy / "checkpoint.ckpt").read_text() == "good epoch 2"
    donor_dir = Path(trial_path(experiment, "good").uri) / "train" / "checkpoint_000002"
    assert (donor_dir / "checkpoint.ckpt").read_text() == "good epoch 2", "donor untouched"
    # The donor's values, perturbed: lr x0.8 or x1.2, batch size a neighbour in its choice.
    assert bad.config["module.lr"] in (pytest.approx(0.008), pytest.approx(0.012))
    assert bad.config["datamodule.batch_size"] in (32, 64)
    assert exploit.before == {"module.lr": 0.05, "datamodule.batch_size": 64}
    assert exploit.values == {k: bad.config[k] for k in ("module.lr", "datamodule.batch_size")}
    assert bad.config["seed"] == 2, "the trial keeps its own seed"
    assert good.config["module.lr"] == 0.01 and LINEAGE_KEY not in good.config


@pytest.mark.parametrize("epoch", [1, 8], ids=["before the interval", "at the last epoch"])
def test_no_exploit_before_the_interval_nor_at_the_last_epoch(sweep, epoch: int) -> None:
    # At the last epoch there is nothing left to train: the trial ends as it is.
    scheduler, controller, experiment = sweep
    good, bad = controller.trials
    _report(scheduler, controller, good, epoch, 0.9, experiment)
    _report(scheduler, controller, bad, epoch, 0.5, experiment)
    assert controller.paused == [] and Exploit.of(bad.config) is None


def test_a_second_exploit_replaces_the_first_copy(sweep) -> None:
    scheduler, controller, experiment = sweep
    good, bad = controller.trials
    for epoch in (2, 4):
        bad.status = "RUNNING"
        _report(scheduler, controller, good, epoch, 0.9, experiment)
        _report(scheduler, controller, bad, epoch, 0.5, experiment)
    exploit = Exploit.of(bad.config)
    assert exploit is not None and (exploit.generation, exploit.epoch) == (2, 4)
    copies = sorted(p.name for p in (Path(trial_path(experiment, "bad").uri) / PBT_DIR).iterdir())
    assert copies == ["002"]


def test_a_donor_checkpoint_that_is_gone_skips_the_exploit(sweep) -> None:
    scheduler, controller, experiment = sweep
    good, bad = controller.trials
    _report(scheduler, controller, good, 2, 0.9, experiment)
    good.last_result[CHECKPOINT_PATH_KEY] += "-removed-by-train"
    _report(scheduler, controller, bad, 2, 0.5, experiment)
    assert controller.paused == [] and Exploit.of(bad.config) is None


def test_mutations_come_from_the_space_and_perturbed_values_stay_in_bounds() -> None:
    spec = SweepSpec.model_validate(PBT_SWEEP)
    found = mutations(spec.search_space, spec.pbt_mutated)
    assert found["datamodule.batch_size"] == [32, 64]
    assert within_bounds(spec.search_space, {"module.lr": 0.5}) == {"module.lr": 0.1}
    assert within_bounds(spec.search_space, {"module.lr": 1e-5}) == {"module.lr": 1e-3}


def test_keys_outside_mutate_are_the_donors_with_its_weights(tmp_path: Path) -> None:
    spec = SweepSpec.model_validate({**PBT_SWEEP, "scheduler": {
        **PBT_SWEEP["scheduler"], "mutate": ["model.lr"]}})  # LightningCLI's name for module.
    assert spec.pbt_mutated == ["module.lr"]
    scheduler, controller, experiment = _population(tmp_path, spec)
    good, bad = controller.trials
    _report(scheduler, controller, good, 2, 0.9, experiment)
    _report(scheduler, controller, bad, 2, 0.5, experiment)
    assert bad.config["datamodule.batch_size"] == 32, "the donor's, unperturbed"
    assert Exploit.of(bad.config).before["datamodule.batch_size"] == 64


def test_a_trials_train_run_is_cleared_once_per_exploit(tmp_path: Path) -> None:
    experiment = Location.parse(tmp_path)
    own = _checkpoint(experiment, "t", 3)
    assert begin_generation(experiment, "t", 1)
    assert not Path(own).exists()
    _checkpoint(experiment, "t", 5)  # the new run's own checkpoint
    assert not begin_generation(experiment, "t", 1), "a restart within the generation keeps it"
    assert Path(trial_path(experiment, "t").uri, "train", "checkpoint_000005").exists()
    assert begin_generation(experiment, "t", 2)


@pytest.mark.parametrize(("epoch", "decision"), [(6, "PAUSE"), (8, "CONTINUE")],
                         ids=["mid-way: takes turns", "at the last epoch: ends"])
def test_a_trial_at_its_last_epoch_is_never_paused_for_a_waiting_one(
        sweep, epoch: int, decision: str) -> None:
    # Ray's PBT pauses a trial at a perturbation point while another waits; one at its last
    # epoch would only be started again to report that epoch once more.
    scheduler, controller, experiment = sweep
    good, bad = controller.trials
    bad.status = "PAUSED"
    assert _report(scheduler, controller, good, epoch, 0.9, experiment) == decision


def test_trials_take_no_turns_when_the_whole_population_runs_at_once(sweep) -> None:
    # The paused trial is a moved one about to restart: pausing another for it would only stop
    # that one's Train run, to start it again from its checkpoint.
    scheduler, controller, experiment = sweep
    good, bad = controller.trials
    bad.status = "PAUSED"
    scheduler.concurrency = 2
    assert _report(scheduler, controller, good, 6, 0.9, experiment) == "CONTINUE"


def test_a_resumed_trial_whose_exploit_tunes_state_missed_goes_on_with_the_recorded_values(
    tmp_path: Path,
) -> None:
    """The driver died after PBT moved a trial and before Tune saved its state again: Tune's
    restored trial has its old values, the record the new ones, which the trial trained with."""
    spec = SweepSpec.model_validate(PBT_SWEEP)
    scheduler, controller, experiment = _population(tmp_path, spec)
    good, bad = controller.trials
    stale = dict(bad.config)
    _report(scheduler, controller, good, 2, 0.9, experiment)
    _report(scheduler, controller, bad, 2, 0.5, experiment)
    moved = dict(bad.config)
    assert Exploit.of(moved) is not None
    record = TrialRecord("bad", config=moved, lineage=[moved[LINEAGE_KEY]])
    Ledger(spec, {"bad": record, "good": TrialRecord("good", config=dict(good.config))}
           ).save(experiment)

    resumed = TrainRunPBT(spec, experiment)  # as Tune restores the sweep
    trials = [FakeTrial("good", dict(good.config)), FakeTrial("bad", stale)]
    for trial in trials:
        resumed.on_trial_add(FakeController(trials), trial)  # type: ignore[arg-type]
    assert trials[1].config == moved, "goes on with the values it trained with"
    assert trials[0].config == good.config

    # A trial whose restored config is as new as its record's is left as Tune restored it.
    again = FakeTrial("bad", dict(moved, **{"module.lr": 0.5}))
    resumed.on_trial_add(FakeController([again]), again)  # type: ignore[arg-type]
    assert again.config["module.lr"] == 0.5
