"""Ray's Lightning strategy and environment exist for both Lightning namespaces."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import lightning.pytorch as lp
import pytest
from ray.train.lightning import RayDDPStrategy, RayLightningEnvironment
from typing_extensions import override

from tuning.contracts import RESENT_CHECKPOINT_KEY
from tuning.trial.lightning_compat import ray_lightning
from tuning.trial.session import TrainSession

ptl = pytest.importorskip("pytorch_lightning")


def test_lightning_pytorch_uses_rays_own_classes() -> None:
    strategy, environment, callback = ray_lightning(lp)
    assert strategy is RayDDPStrategy and environment is RayLightningEnvironment
    assert issubclass(callback, lp.Callback)


def test_pytorch_lightning_gets_the_same_behaviour_on_its_own_bases() -> None:
    strategy, environment, callback = ray_lightning(ptl)
    assert issubclass(strategy, ptl.strategies.DDPStrategy)
    assert not issubclass(strategy, lp.strategies.DDPStrategy)
    assert issubclass(callback, ptl.Callback)
    # Ray's own behaviour, not a re-implementation:
    assert strategy.root_device is RayDDPStrategy.root_device
    assert environment.global_rank is RayLightningEnvironment.global_rank
    assert strategy().distributed_sampler_kwargs.keys() == {"num_replicas", "rank"}


def _reports(*epochs: int) -> list[dict[str, float]]:
    return [{"epoch": e, "val/acc": 0.1 * e} for e in epochs]


@pytest.mark.parametrize(("known_epoch", "resent"), [
    (2, [3, 4]),  # Train took epochs 3-4, the sweep never recorded them: sent again
    (4, [4]),     # all recorded: the checkpoint's own epoch still goes again
    (0, [1, 2, 3, 4]),
])
def test_a_restored_run_sends_again_the_reports_the_sweep_never_recorded(
    known_epoch: int, resent: list[int]
) -> None:
    callback = ray_lightning(lp)[2](TrainSession(), known_epoch=known_epoch)
    callback.load_state_dict({"reports": _reports(1, 2, 3, 4)})
    assert [r["epoch"] for r in callback._to_resend] == resent


class _Restored(TrainSession):
    """A Train session restored from a checkpoint, recording what the callback reports."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    @override
    def checkpoint(self) -> Any:
        return SimpleNamespace(path="/runs/x/trial_a/train/checkpoint_4")

    @override
    def report(self, metrics: dict[str, Any], checkpoint: Any | None, last: bool = False) -> None:
        self.sent.append(metrics)


def test_the_report_sent_again_with_its_checkpoint_names_that_checkpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tuning.trial import lightning_compat

    monkeypatch.setattr(lightning_compat, "_what_runs", lambda trainer, session: {})
    session = _Restored()
    callback = ray_lightning(lp)[2](session, known_epoch=2)
    callback.load_state_dict({"reports": _reports(1, 2, 3, 4)})
    callback.on_fit_start(SimpleNamespace(should_stop=False), None)
    assert [r["epoch"] for r in session.sent] == [3, 4]
    assert RESENT_CHECKPOINT_KEY not in session.sent[0]
    assert session.sent[1][RESENT_CHECKPOINT_KEY] == "/runs/x/trial_a/train/checkpoint_4"
