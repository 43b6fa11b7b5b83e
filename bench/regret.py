"""Does telling Optuna the truth find better models? ``python -m bench.regret`` (in ``make bench``).

Replays real learning curves through Ray Tune, anchor by anchor as a trial's epochs, searched by
Optuna's TPE and stopped early by ASHA, twice per task and seed: once with lightsweep's searcher
(a stopped trial is PRUNED with its per-epoch values) and once with Ray's stock OptunaSearch (a
stopped trial is COMPLETE, its partial value taken as final). Nothing else differs: the same
sampler seed, space, scheduler and curves.

The curves are LCDB's (Mohr et al., 2022, the ``lcdb`` package on PyPI, whose package carries
``database-accuracy.csv``; nothing is downloaded): validation accuracy of 20 scikit-learn
classifiers on OpenML datasets at growing training-set sizes (anchors 16, 23, 32, ... samples),
each curve one real run (LCDB's outer seeds in turn, first inner split), noise and all. A task is
a dataset; the searched parameter is the classifier; a trial's "epochs" are its anchors. The
known optimum of a run is the best classifier's accuracy at the last anchor; its final regret,
that optimum minus the last-anchor accuracy of the classifier the search returns (the best
trial that ran to the last anchor). The sdist is on PyPI only (no wheel): pip builds it.

``regret_ratio_pruned_vs_stock`` = median over seeds of the mean regret over tasks, lightsweep's
searcher over stock's (< 1: lightsweep's ends nearer the optimum). Merged into
``bench/results/latest.json`` with the per-task figures under ``regret``.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.results_file import RESULTS, merge_results

METRIC, MODE = "val/acc", "max"
SEEDS = (0, 1, 2, 3, 4, 5, 6)
TASKS = 6  # datasets
TRIALS = 24  # per run: TPE proposes 14 of them after its 10 random start-up trials
GRACE_PERIOD, REDUCTION_FACTOR = 1, 3
MIN_ANCHORS = 10

logger = logging.getLogger("bench.regret")

Curves = dict[str, list[float]]  # classifier -> validation accuracy per anchor


def _lcdb_csv() -> Path:
    """The accuracy table inside the installed ``lcdb`` package, found without importing it
    (its ``__init__`` pulls in OpenML's client, which this never needs)."""
    spec = importlib.util.find_spec("lcdb")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("bench.regret needs LCDB's curves: pip install -c constraints.txt "
                         "-e '.[bench]' (make bench does)")
    return Path(next(iter(spec.submodule_search_locations))) / "database-accuracy.csv"


def load_tasks(n_tasks: int = TASKS, min_anchors: int = MIN_ANCHORS) -> dict[int, list[Curves]]:
    """Per dataset, the curves of LCDB's runs (one per outer seed, its first inner split): each
    classifier's validation accuracy over the anchors every classifier reached in every run.

    The ``n_tasks`` datasets are those where the choice of classifier matters most (the widest
    gap between the best and the median classifier's mean last-anchor accuracy) among those with
    at least ``min_anchors`` such anchors.
    """
    import pandas as pd

    table = pd.read_csv(_lcdb_csv(), usecols=["openmlid", "learner", "size_train",
                                              "outer_seed", "inner_seed", "score_valid"])
    table = table[table["inner_seed"] == 0]
    runs = table.groupby(["openmlid", "outer_seed", "learner", "size_train"])["score_valid"].mean()
    learners = table["learner"].nunique()
    candidates: list[tuple[float, int, list[Curves]]] = []
    for openmlid, by_task in runs.groupby(level="openmlid"):
        curves = {key[1:3]: c.droplevel([0, 1, 2]) for key, c in
                  by_task.groupby(level=["openmlid", "outer_seed", "learner"])}
        seeds = sorted({seed for seed, _ in curves})
        if len(curves) < learners * len(seeds):
            continue
        shared = sorted(set.intersection(*(set(c.index) for c in curves.values())))
        if len(shared) < min_anchors:
            continue
        replayed = [{learner: [float(c[a]) for a in shared] for (s, learner), c in curves.items()
                     if s == seed} for seed in seeds]
        finals = [statistics.fmean(r[learner][-1] for r in replayed) for learner in replayed[0]]
        candidates.append((max(finals) - statistics.median(finals), int(openmlid), replayed))
    candidates.sort(key=lambda c: (-c[0], c[1]))
    return {openmlid: runs_ for _, openmlid, runs_ in candidates[:n_tasks]}


def _replay(curves: Curves) -> Callable[[dict[str, Any]], None]:
    def trainable(config: dict[str, Any]) -> None:
        from ray import tune

        for epoch, value in enumerate(curves[config["learner"]], start=1):
            tune.report({METRIC: value, "epoch": epoch})

    return trainable


def _searcher(truthful: bool, seed: int, max_epochs: int) -> Any:
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    from tuning.driver.searcher import TruthfulOptunaSearch

    sampler = optuna.samplers.TPESampler(seed=seed)
    if truthful:
        return TruthfulOptunaSearch(max_epochs=max_epochs, sampler=sampler)
    return OptunaSearch(sampler=sampler)


def final_regret(curves: Curves, results: list[tuple[str, int, float]]) -> float:
    """The optimum's last-anchor accuracy minus that of the classifier the run returns: the
    best of the trials that ran to the last anchor (if none did, the furthest-run best).

    Args:
        curves: The task's curves.
        results: Per trial: classifier, epochs run, last value.
    """
    optimum = max(c[-1] for c in curves.values())
    furthest = max(epochs for _, epochs, _ in results)
    returned = max((r for r in results if r[1] == furthest), key=lambda r: r[2])[0]
    return optimum - curves[returned][-1]


def _run(curves: Curves, truthful: bool, seed: int, storage: Path) -> tuple[float, list[str]]:
    """One search of ``curves``: its final regret, and the classifiers it proposed in order."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    max_epochs = len(next(iter(curves.values())))
    searcher = _searcher(truthful, seed, max_epochs)
    grid = tune.Tuner(
        _replay(curves),
        param_space={"learner": tune.choice(sorted(curves))},
        tune_config=tune.TuneConfig(
            metric=METRIC, mode=MODE, num_samples=TRIALS,
            search_alg=searcher,
            scheduler=ASHAScheduler(time_attr="epoch", max_t=max_epochs,
                                    grace_period=GRACE_PERIOD, reduction_factor=REDUCTION_FACTOR),
            # One trial at a time: each proposal sees every result before it, so a run is a
            # function of its seed alone.
            max_concurrent_trials=1, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(storage), verbose=0),
    ).fit()
    results = []
    for result in (grid[i] for i in range(len(grid))):
        if result.config and result.metrics:
            results.append((result.config["learner"], int(result.metrics["epoch"]),
                            float(result.metrics[METRIC])))
    proposed = [t.params["learner"] for t in searcher.study.trials]
    return final_regret(curves, results), proposed


def run(seeds: tuple[int, ...] = SEEDS, n_tasks: int = TASKS) -> dict[str, Any]:
    import tempfile

    import ray

    tasks = load_tasks(n_tasks)
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    regrets: dict[str, dict[int, dict[int, float]]] = {"truthful": {}, "stock": {}}
    differed = 0  # runs whose two searches proposed different classifiers somewhere
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lightsweep-bench-regret-") as tmp:
        for openmlid, task_runs in tasks.items():
            for seed in seeds:
                curves = task_runs[seed % len(task_runs)]  # LCDB's runs in turn
                proposals = []
                for variant in regrets:
                    regret, proposed = _run(curves, variant == "truthful", seed, Path(tmp))
                    regrets[variant].setdefault(seed, {})[openmlid] = regret
                    proposals.append(proposed)
                differed += proposals[0] != proposals[1]
            logger.info("task %d: regret truthful %s, stock %s", openmlid,
                        [round(regrets["truthful"][s][openmlid], 4) for s in seeds],
                        [round(regrets["stock"][s][openmlid], 4) for s in seeds])
    ray.shutdown()
    per_seed = {v: [statistics.fmean(regrets[v][s].values()) for s in seeds] for v in regrets}
    medians = {v: statistics.median(per_seed[v]) for v in regrets}
    # Both at the optimum (0 / 0): equally near it.
    ratio = (medians["truthful"] / medians["stock"] if medians["stock"]
             else 1.0 if medians["truthful"] == 0 else None)
    runs = len(tasks) * len(seeds)
    means = {v: statistics.fmean(per_seed[v]) for v in regrets}
    figures = {"regret_ratio_pruned_vs_stock": ratio}
    detail = {
        "benchmark": "LCDB 0.1.0 database-accuracy.csv (validation accuracy; run = seed % 5)",
        "tasks_openml_ids": list(tasks),
        "anchors": {i: len(next(iter(c[0].values()))) for i, c in tasks.items()},
        "seeds": list(seeds), "trials_per_run": TRIALS, "grace_period": GRACE_PERIOD,
        "reduction_factor": REDUCTION_FACTOR, "wall_s": time.perf_counter() - start,
        "median_regret": medians, "mean_regret": means, "mean_regret_per_seed": per_seed,
        "runs": runs, "runs_whose_proposals_differed": differed,
        "regret_per_task": {v: {str(i): [regrets[v][s][i] for s in seeds] for i in tasks}
                            for v in regrets},
    }
    print(f"median regret: lightsweep {medians['truthful']:.4f}, stock {medians['stock']:.4f}")
    print(f"mean regret: lightsweep {means['truthful']:.4f}, stock {means['stock']:.4f}")
    print(f"runs whose two searches proposed differently: {differed} of {runs}")
    print(f"regret_ratio_pruned_vs_stock: {ratio}")
    return {**figures, "regret": detail}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=len(SEEDS), help="seeds 0..N-1")
    parser.add_argument("--tasks", type=int, default=TASKS, help="datasets")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON file (default {RESULTS})")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    merge_results(args.out, run(tuple(range(args.seeds)), args.tasks))
    print(f"\nmerged into: {args.out}")


if __name__ == "__main__":
    main()
