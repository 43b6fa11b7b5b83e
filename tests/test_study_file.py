"""The sweep's study in SQLite: every ended trial, once, as optuna-dashboard reads it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import optuna
import pytest
from ray import tune

from tuning.driver.searcher import TruthfulOptunaSearch
from tuning.record.location import Location
from tuning.record.study_file import (
    STUDY_FILE,
    STUDY_NAME,
    TRIAL_ID_ATTR,
    StudyFile,
    upload_pending,
)


def _searcher(experiment: Path | str) -> TruthfulOptunaSearch:
    search = TruthfulOptunaSearch(
        max_epochs=3, metric="val/acc", mode="max", sampler=optuna.samplers.TPESampler(seed=0),
        study_file=StudyFile(str(experiment), ["maximize"]),
    )
    search.set_search_properties("val/acc", "max", {"module.lr": tune.loguniform(1e-4, 1e-1)})
    return search


def _run(search: TruthfulOptunaSearch, trial_id: str, values: list[float], error: bool = False):
    search.suggest(trial_id)
    result: dict[str, Any] | None = None
    for epoch, value in enumerate(values, start=1):
        result = {"val/acc": value, "epoch": epoch}
        search.on_trial_result(trial_id, result)
    search.on_trial_complete(trial_id, result, error=error)


def _stored(experiment: Path) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=STUDY_NAME,
                             storage=f"sqlite:///{experiment / STUDY_FILE}").get_trials()


def test_ended_trials_are_copied_once_with_their_state_and_epochs(tmp_path: Path) -> None:
    search = _searcher(tmp_path)
    _run(search, "done", [0.5, 0.6, 0.7])
    _run(search, "stopped", [0.4])
    _run(search, "broken", [], error=True)
    search.suggest("running")  # not ended: not copied
    stored = _stored(tmp_path)
    assert [(t.state.name, t.value, t.user_attrs[TRIAL_ID_ATTR]) for t in stored] == [
        ("COMPLETE", 0.7, "done"), ("PRUNED", None, "stopped"), ("FAIL", None, "broken")]
    assert stored[0].intermediate_values == {1: 0.5, 2: 0.6, 3: 0.7}
    assert stored[0].params == search.study.trials[0].params


def test_trials_that_end_out_of_order_are_all_copied(tmp_path: Path) -> None:
    search = _searcher(tmp_path)
    for trial_id in ("slow", "fast", "last"):
        search.suggest(trial_id)
    for trial_id in ("fast", "last", "slow"):  # the file looks only past the first it lacks
        search.on_trial_result(trial_id, {"val/acc": 0.5, "epoch": 1})
        search.on_trial_complete(trial_id, {"val/acc": 0.5, "epoch": 1})
    assert sorted(t.user_attrs[TRIAL_ID_ATTR] for t in _stored(tmp_path)) == [
        "fast", "last", "slow"]


def test_a_resumed_searcher_adds_to_the_same_file(tmp_path: Path) -> None:
    search = _searcher(tmp_path)
    _run(search, "a", [0.5, 0.6, 0.7])
    # Resume: Ray Tune restores the searcher it saved, which goes on from the same study.
    search.save(str(tmp_path / "searcher.pkl"))
    restored = TruthfulOptunaSearch(max_epochs=3)
    restored.restore(str(tmp_path / "searcher.pkl"))
    _run(restored, "b", [0.8, 0.9, 0.95])
    assert [t.user_attrs[TRIAL_ID_ATTR] for t in _stored(tmp_path)] == ["a", "b"]


def test_optuna_dashboard_lists_the_study_and_its_trials(tmp_path: Path) -> None:
    from optuna_dashboard import wsgi

    search = _searcher(tmp_path)
    _run(search, "done", [0.5, 0.6, 0.7])
    _run(search, "stopped", [0.4])
    app = wsgi(f"sqlite:///{tmp_path / STUDY_FILE}")

    def get(path: str) -> Any:
        status: list[str] = []
        environ: dict[str, Any] = {"PATH_INFO": path}
        setup_testing_defaults(environ)
        body = app(environ, lambda s, h, *exc: status.append(s))
        assert status[0].startswith("200"), (status, b"".join(body)[:2000])
        return json.loads(b"".join(body))

    [study] = get("/api/studies")["study_summaries"]
    assert study["study_name"] == STUDY_NAME
    detail = get(f"/api/studies/{study['study_id']}")
    assert [t["state"] for t in detail["trials"]] == ["Complete", "Pruned"]


def _stored_in(location: Location, tmp_path: Path) -> list[optuna.trial.FrozenTrial]:
    local = tmp_path / "fetched.db"
    local.write_bytes((location / STUDY_FILE).read_bytes())
    return optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{local}").get_trials()


def test_a_cloud_study_file_is_uploaded_in_batches_and_whole_at_the_end(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment = Location.parse(s3_bucket) / "runs/exp"
    search = _searcher(experiment.uri)
    uploads: list[int] = []
    real_write = Location.write_bytes
    monkeypatch.setattr(Location, "write_bytes",
                        lambda self, data: (uploads.append(len(data)), real_write(self, data)))
    for i in range(5):
        _run(search, f"t{i}", [0.5, 0.6, 0.7])
    # The first ended trial is uploaded at once; the next ones wait for the interval to pass.
    assert len(uploads) == 1
    assert [t.user_attrs[TRIAL_ID_ATTR] for t in _stored_in(experiment, tmp_path)] == ["t0"]
    upload_pending()  # as the sweep's driver does when Tune ends
    assert len(uploads) == 2
    assert [t.user_attrs[TRIAL_ID_ATTR] for t in _stored_in(experiment, tmp_path)] == [
        f"t{i}" for i in range(5)]
    upload_pending()  # nothing new: no upload
    assert len(uploads) == 2


def test_a_restored_searcher_adds_to_the_cloud_file(
    s3_bucket: str, tmp_path: Path
) -> None:
    experiment = Location.parse(s3_bucket) / "runs/exp"
    search = _searcher(experiment.uri)
    _run(search, "a", [0.5, 0.6, 0.7])
    _run(search, "b", [0.4])
    upload_pending()
    search.save(str(tmp_path / "searcher.pkl"))
    restored = TruthfulOptunaSearch(max_epochs=3)
    restored.restore(str(tmp_path / "searcher.pkl"))
    _run(restored, "c", [0.8, 0.9, 0.95])
    upload_pending()
    assert [(t.user_attrs[TRIAL_ID_ATTR], t.state.name) for t in _stored_in(
        experiment, tmp_path)] == [("a", "COMPLETE"), ("b", "PRUNED"), ("c", "COMPLETE")]
