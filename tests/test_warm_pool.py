"""Train workers started ahead of need (tuning.trial.warm_pool): how many to start, which processes
count, the start-up imports, the runtime env's text, the fallback where Ray moved a part, and a
real sweep whose later trials take workers started ahead."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.conftest import BASE_SWEEP, SweepWriter
from tuning import launch, leaderboard
from tuning._internals import prestart as compat
from tuning.config.spec import SweepSpec
from tuning.trial import warm_pool
from tuning.trial.warm_pool import (
    SITE_DIR,
    WARM_IMPORTS_ENV,
    WORKER_STARTS_FILE,
    WarmPool,
    started_ahead_here,
    warm_imports,
    workers_to_start,
)


@pytest.mark.parametrize(
    ("wanted", "started", "free_cpus", "cpus_per_worker", "expected"),
    [
        (1, 0, 0.0, 1.0, 0),  # trials fill the node: none, whatever is wanted
        (1, 0, 0.9, 1.0, 0),  # less than a worker's CPUs free
        (1, 0, 3.0, 1.0, 1),
        (4, 0, 3.0, 1.0, 3),  # no more than the free CPUs run
        (1, 1, 3.0, 1.0, 0),  # one started and not yet taken: enough
        (3, 1, 8.0, 1.0, 2),
        (4, 0, 5.0, 2.0, 2),  # two-CPU workers
    ],
)
def test_workers_started_ahead_fill_free_cpus_up_to_the_wanted_count(
    wanted: int, started: int, free_cpus: float, cpus_per_worker: float, expected: int
) -> None:
    assert workers_to_start(wanted=wanted, started=started, free_cpus=free_cpus,
                            cpus_per_worker=cpus_per_worker) == expected


def test_warm_imports_are_the_fit_and_the_users_modules_in_either_class_path_form() -> None:
    spec = SweepSpec.model_validate({**BASE_SWEEP,
                                     "module": "my_project.models.Net",
                                     "datamodule": "my_project.data:Digits"})
    assert warm_imports(spec) == ["tuning.trial.worker", "my_project.models", "my_project.data"]


def _process(proc: Path, pid: int, cmdline: bytes, env: dict[str, str]) -> None:
    entry = proc / str(pid)
    entry.mkdir()
    (entry / "cmdline").write_bytes(cmdline)
    (entry / "environ").write_bytes(b"".join(f"{k}={v}\0".encode() for k, v in env.items()))


def test_only_untaken_workers_of_this_env_count_as_started_ahead(tmp_path: Path) -> None:
    ours = {WARM_IMPORTS_ENV: "tuning.trial.worker,a", "PYTHONPATH": "/warm:/proj"}
    _process(tmp_path, 10, b"ray::IDLE\0", {**ours, "PATH": "/bin"})
    _process(tmp_path, 11, b"/venv/bin/python\0/ray/default_worker.py\0--node-ip-address\0", ours)
    _process(tmp_path, 12, b"ray::RayTrainWorker.run\0", ours)  # taken by a run
    _process(tmp_path, 13, b"ray::IDLE\0", {**ours, "PYTHONPATH": "/warm:/other"})  # another env
    _process(tmp_path, 14, b"ray::IDLE\0", {"PATH": "/bin"})  # one of Ray's own
    _process(tmp_path, 15, b"python\0train.py\0", ours)  # not a Ray worker
    env = json.dumps({"env_vars": {**ours, "HOME_OF": "${HOME}"}, "worker_process_setup_hook": "x"})
    assert started_ahead_here(env, proc=tmp_path) == 2
    assert started_ahead_here(env, ready=True, proc=tmp_path) == 1
    assert started_ahead_here(env, ready=False, proc=tmp_path) == 1


def _python(code: str, tmp_path: Path, imports: str, *path: Path) -> str:
    env = {**os.environ, WARM_IMPORTS_ENV: imports,
           "PYTHONPATH": os.pathsep.join(str(p) for p in (SITE_DIR, *path))}
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, check=True,
                          capture_output=True, text=True, timeout=120).stdout


def test_a_started_ahead_worker_has_imported_its_modules_before_it_runs_anything(
    tmp_path: Path,
) -> None:
    out = _python("import sys; print('tuning.config.spec' in sys.modules, 'csv' in sys.modules)",
                  tmp_path, "csv,no_such_module_here,tuning.config.spec")
    assert out.split() == ["True", "True"], "a module that does not import is skipped"


def test_the_processes_a_started_ahead_workers_fit_starts_import_nothing_of_lightsweeps(
    tmp_path: Path,
) -> None:
    # A fit's DataLoader workers under spawn, and any subprocess, start from the worker's
    # environment: once its imports are done, the start-up env is gone from it.
    fit = (
        "import json, multiprocessing, os, subprocess, sys\n"
        "import torch.utils.data as data\n"
        "def seen(_):\n"
        "    return sorted(m for m in sys.modules if m.startswith('tuning'))\n"
        "class Modules(data.Dataset):\n"
        "    def __len__(self): return 1\n"
        "    def __getitem__(self, i): return json.dumps(seen(i))\n"
        "if __name__ == '__main__':\n"
        "    loader = data.DataLoader(Modules(), num_workers=1,\n"
        "                             multiprocessing_context=multiprocessing.get_context('spawn'))\n"
        "    in_loader = json.loads(next(iter(loader))[0])\n"
        "    child = subprocess.run([sys.executable, '-c', 'import sys; print(sorted(m for m in '\n"
        "                            'sys.modules if m.startswith(\"tuning\")))'],\n"
        "                           capture_output=True, text=True).stdout.strip()\n"
        "    print(json.dumps({'own': 'tuning.config.spec' in sys.modules, 'loader': in_loader,\n"
        "                      'child': child, 'env': os.environ.get('LIGHTSWEEP_WARM_IMPORTS'),\n"
        "                      'path': os.environ.get('PYTHONPATH')}))\n"
    )
    script = tmp_path / "fit.py"
    script.write_text(fit)
    env = {**os.environ, WARM_IMPORTS_ENV: "csv,tuning.config.spec",
           "PYTHONPATH": os.pathsep.join([str(SITE_DIR), str(tmp_path)])}
    done = subprocess.run([sys.executable, str(script)], env=env, cwd=tmp_path, check=True,
                          capture_output=True, text=True, timeout=120)
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["own"], "the worker itself imported its modules ahead"
    assert seen["loader"] == [] and seen["child"] == "[]"
    assert seen["env"] is None and seen["path"] == str(tmp_path)  # the user's path kept


def test_the_sitecustomize_it_hides_still_runs(tmp_path: Path) -> None:
    theirs = tmp_path / "site"
    theirs.mkdir()
    (theirs / "sitecustomize.py").write_text("import os\nos.environ['THEIRS_RAN'] = 'yes'\n")
    out = _python("import os; print(os.environ.get('THEIRS_RAN'))", tmp_path, "csv", theirs)
    assert out.strip() == "yes"


def test_the_start_up_imports_leave_cuda_untouched_for_the_gpus_ray_gives_later(
    tmp_path: Path,
) -> None:
    # A worker started ahead imports before Ray sets its actor's CUDA_VISIBLE_DEVICES: any CUDA
    # query then would fix the devices the process sees (torch caches none before CUDA starts).
    probe = (
        "import importlib, torch\n"
        "calls = []\n"
        "def spy(name, real):\n"
        "    return lambda *a, **k: calls.append(name) or real(*a, **k)\n"
        "torch._C._cuda_getDeviceCount = spy('getDeviceCount', torch._C._cuda_getDeviceCount)\n"
        "torch.cuda.device_count = spy('device_count', torch.cuda.device_count)\n"
        "torch.cuda.is_available = spy('is_available', torch.cuda.is_available)\n"
        "for m in ['tuning.trial.worker', 'lightning_modules.classifier',\n"
        "          'lightning_modules.datamodules']:\n"
        "    importlib.import_module(m)\n"
        "print(calls, torch.cuda.is_initialized())\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).parents[1],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    assert out.strip() == "[] False"


def test_the_env_text_of_a_child_actor_is_rays_merge_of_its_parents() -> None:
    # Measured on Ray 2.60: a job's env as its processes hold it, an actor's own env, and the
    # text the GCS then held for the actor (and its worker for itself).
    parent = ('{"env_vars": {"A": "1", "B": "2", "PYTHONPATH": "/tmp/x", '
              '"__RAY_WORKER_PROCESS_SETUP_HOOK_ENV_VAR": "gc.collect"}, '
              '"worker_process_setup_hook": "gc.collect"}')
    child = {"env_vars": {"PYTHONPATH": "/tmp/warm:${PYTHONPATH}", "Z": "9", "A": "0"}}
    assert compat.child_runtime_env(parent, child) == (
        '{"env_vars":{"A":"0","B":"2","PYTHONPATH":"/tmp/warm:${PYTHONPATH}","Z":"9",'
        '"__RAY_WORKER_PROCESS_SETUP_HOOK_ENV_VAR":"gc.collect"},'
        '"worker_process_setup_hook":"gc.collect"}')


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> WarmPool:
    """A pool whose Ray parts are stand-ins: an env predicted, 3 free CPUs, no worker started."""
    monkeypatch.setattr(WarmPool, "off", None)
    kv: dict[str, str] = {}
    monkeypatch.setattr(compat, "internal_kv_get", kv.get)
    monkeypatch.setattr(compat, "internal_kv_put", kv.__setitem__)
    monkeypatch.setattr(warm_pool, "_started_key", lambda: "started")
    monkeypatch.setattr(compat, "own_serialized_runtime_env", lambda: "{}")
    monkeypatch.setattr(compat, "train_worker_runtime_env", lambda env: env)
    monkeypatch.setattr(compat, "free_cpus_here", lambda: 3.0)
    monkeypatch.setattr(warm_pool, "_job_hex", lambda: "01000000")
    monkeypatch.setattr(warm_pool, "started_ahead_here", lambda env, ready=None: 0)
    spec = SweepSpec.model_validate({**BASE_SWEEP, "resources": {"warm_workers": 2}})
    return WarmPool.for_spec(spec)


def test_while_a_run_fits_workers_start_on_the_cpus_no_trial_holds(
    pool: WarmPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, int]] = []
    monkeypatch.setattr(compat, "prestart_workers", lambda env, n, keep: asked.append((env, n)))
    warm = pool.before_run()
    assert warm is not None and warm["env_from"] == "predicted"
    assert json.loads(warm["env"])["env_vars"][WARM_IMPORTS_ENV] == pool.imports
    pool.during_run()  # its first report: 3 CPUs free, 2 wanted
    pool.during_run()
    assert asked == [(warm["env"], 2)], "once per run"

    monkeypatch.setattr(warm_pool, "started_ahead_here",
                        lambda env, ready=None: 0 if ready is False else 2)  # both ready
    pool.before_run()
    pool.during_run()
    assert asked == [(warm["env"], 2)], "the two not yet taken are enough"

    monkeypatch.setattr(warm_pool, "started_ahead_here", lambda env, ready=None: 0)
    monkeypatch.setattr(compat, "free_cpus_here", lambda: 0.0)
    pool.before_run()
    pool.during_run()
    assert len(asked) == 1, "trials fill the node: none"


def test_the_sweeps_driver_starts_the_first_trials_workers_with_their_trial_processes_env(
    pool: WarmPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, int]] = []
    monkeypatch.setattr(compat, "prestart_workers", lambda env, n, keep: asked.append((env, n)))
    monkeypatch.setattr(compat, "tune_trial_runtime_env",
                        lambda: {"env_vars": {"PL_DISABLE_FORK": "1"}})
    pool.before_sweep(concurrency=8)
    [(env, count)] = asked
    assert count == 3, "8 trials at once, 3 free CPUs"
    assert json.loads(env)["env_vars"]["PL_DISABLE_FORK"] == "1", (
        "a trial process's own variables (Tune's) reach the workers it starts")


def test_the_env_text_learned_from_a_worker_replaces_the_prediction(
    pool: WarmPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    learned = '{"env_vars":{"X":"1"}}'
    monkeypatch.setattr(compat, "internal_kv_get", lambda key: None if key == "started" else learned)
    warm = pool.before_run()
    assert warm is not None
    assert (warm["env"], warm["env_from"]) == ('{"env_vars":{"X":"1"}}', "learned")


def test_a_run_waits_for_workers_started_ahead_that_are_still_importing(
    pool: WarmPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    starting = [2]

    def count(env: str, ready: bool | None = None) -> int:
        if ready is None:
            return 1
        if ready:
            return 1 if starting[0] <= 0 else 0  # ready once it has started
        starting[0] -= 1
        return max(starting[0], 0)

    monkeypatch.setattr(warm_pool, "started_ahead_here", count)
    assert pool.before_run() is not None
    assert starting[0] == 2, "none started here: a starting worker is another trial's"
    monkeypatch.setattr(compat, "prestart_workers", lambda env, n, keep: None)
    pool.during_run()  # starts one
    assert pool.before_run() is not None
    assert starting[0] == 0, "polled until it was ready"


def test_a_run_waits_for_a_worker_started_ahead_that_ray_is_still_setting_up(
    pool: WarmPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its first second or so, a worker the raylet starts is Ray's set-up process, without the
    # env's variables: neither ready nor starting to see.
    polls = [0]

    def count(env: str, ready: bool | None = None) -> int:
        if ready is None:
            return 0
        polls[0] += ready is True
        return int(bool(ready) and polls[0] > 3)

    monkeypatch.setattr(warm_pool, "started_ahead_here", count)
    monkeypatch.setattr(compat, "prestart_workers", lambda env, n, keep: None)
    pool.during_run()
    assert pool.before_run() is not None
    assert polls[0] == 4, "waited until it was ready"


def test_a_refused_start_turns_the_pool_off_and_runs_start_workers_as_ray_does(
    pool: WarmPool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(*args: Any) -> None:
        raise grpc.RpcError("unimplemented")

    monkeypatch.setattr(compat, "prestart_workers", refuse)
    pool.before_run()
    with caplog.at_level(logging.WARNING):
        pool.during_run()
    assert WarmPool.off is not None and "RpcError" in WarmPool.off
    assert "not started ahead" in caplog.text
    assert pool.before_run() is None, "the next run's workers: Ray's own (no worker env)"
    assert WarmPool.for_spec(SweepSpec.model_validate(BASE_SWEEP)).before_run() is None


def test_where_ray_moved_the_env_text_the_pool_is_off(
    pool: WarmPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    def moved() -> str:
        raise AttributeError("'Worker' object has no attribute 'core_worker'")

    monkeypatch.setattr(compat, "own_serialized_runtime_env", moved)
    assert pool.before_run() is None
    assert WarmPool.off is not None and "AttributeError" in WarmPool.off


@pytest.mark.ray
@pytest.mark.timeout(300)
def test_later_trials_of_a_sweep_take_workers_started_ahead(
    ray_session, write_sweep: SweepWriter, tmp_path: Path
) -> None:
    sweep = write_sweep(search={"num_samples": 2, "seed": 0},
                        scheduler={"max_epochs": 1, "grace_period": 1},
                        resources={"max_concurrent": 1, "warm_workers": 1})
    path = launch(sweep, storage=str(tmp_path), name="warm").path
    rows = leaderboard(path)
    assert [r["status"] for r in rows] == ["completed"] * 2
    starts = sorted((json.loads(line) for r in rows for line in
                     (tmp_path / "warm" / f"trial_{r['trial_id']}" / WORKER_STARTS_FILE)
                     .read_text().splitlines()), key=lambda s: s["attempt_start"])
    assert len(starts) == 2, "one worker per trial, one run each"
    assert all(s["env_as_started"] for s in starts), "Ray's env text, predicted exactly"
    assert all(s["torch_threads"] == 1 for s in starts), (
        "torch imported before Ray set OMP_NUM_THREADS still fits on the worker's one CPU")
    assert [s["started_ahead"] for s in starts] == [True, True], (
        "the first trial's worker started by the sweep's driver, the next one during a run")
    first, second = starts
    assert first["attempt_start"] < second["process_start"] < second["attempt_start"], (
        "the second trial's worker was started while the first trial's run fitted")
    assert all(s["process_start"] < s["attempt_start"] < s["loop_start"] for s in starts)
