"""Which W&B run a trial gets: offline unless a key is configured, named for the trial."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SweepWriter
from tuning.cli import _parser
from tuning.config.spec import load_spec
from tuning.record.location import Location
from tuning.trial.tracking import wandb_mode, wandb_run


@pytest.fixture
def no_wandb_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))  # no `wandb login` on this machine
    return monkeypatch


def test_offline_without_a_key_online_with_one_and_the_users_mode_wins(
    no_wandb_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert wandb_mode() == "offline"
    no_wandb_env.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode() == "online"
    no_wandb_env.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == "disabled"


def test_a_key_from_wandb_login_counts(no_wandb_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    netrc.chmod(0o600)
    assert wandb_mode() == "online"


def test_run_is_the_trials_grouped_by_the_sweep(
    no_wandb_env: pytest.MonkeyPatch, write_sweep: SweepWriter, tmp_path: Path
) -> None:
    spec = load_spec(write_sweep(wandb={"project": "seed-team", "tags": ["cnn"]}))
    run = wandb_run(spec, Location.parse(tmp_path / "runs" / "try 1"), "ab12cd34", "offline")
    assert run == {"project": "seed-team", "entity": None, "group": "try 1", "name": "ab12cd34",
                   "id": "try-1-ab12cd34", "tags": ["cnn"],
                   "save_dir": str(tmp_path / "runs" / "try 1"), "mode": "offline"}
    cloud = wandb_run(spec, Location.parse("s3://bucket/runs/try1"), "ab12cd34", "online")
    assert cloud is not None and cloud["save_dir"] is None
    assert wandb_run(load_spec(write_sweep(wandb={"enabled": False})),
                     Location.parse(tmp_path), "ab12cd34", "offline") is None


def test_command_line_turns_wandb_off_or_names_the_project(write_sweep: SweepWriter) -> None:
    parse = _parser().parse_args
    assert parse(["launch", "s.yaml", "--no-wandb"]).wandb is False
    args = parse(["launch", "s.yaml", "--wandb-project", "p"])
    assert (args.wandb, args.wandb_project) == (None, "p")
    with pytest.raises(SystemExit):
        parse(["launch", "s.yaml", "--no-wandb", "--wandb-project", "p"])
    spec = load_spec(write_sweep(wandb={"enabled": False}),
                     {"wandb.enabled": True, "wandb.project": "p"})
    assert (spec.wandb.enabled, spec.wandb.project) == (True, "p")
