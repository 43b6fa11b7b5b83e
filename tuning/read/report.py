"""A sweep's report: one self-contained HTML file and its PNGs, from the experiment's leaderboard.

``run_tune.py report EXPERIMENT_DIR`` writes ``EXPERIMENT_DIR/report/index.html`` with:

- the best trial and what the sweep cost (epochs, worker-seconds, what early stopping saved);
- ``learning_curves.png``: every trial's metric per epoch, ASHA's rungs, where each stopped;
- ``parallel_coordinates.png``: each trial's searched values against its best metric;
- ``importances.png``: Optuna's parameter importances (fANOVA) over the completed trials;
- ``epochs.png``: epochs each trial trained, and those early stopping saved;
- ``pbt_schedules.png`` (population-based training): each trial's values by epoch, and which
  trial each exploit continued from;
- ``pareto_front.png`` (several objectives): every trial's point in the first two objectives,
  the fronts, and the trials stopped early or breaking a constraint;
- the leaderboard.

It reads only the leaderboard, so it works during a sweep too, and for a cloud experiment
(the report then goes to a local directory).
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from tuning.config.space import Choice, IntRange, LogUniform
from tuning.config.spec import SweepSpec, total_violation
from tuning.read.formats import metric_text
from tuning.record import Ledger, TrialRecord, is_finite_number
from tuning.record.budget import budget_line
from tuning.record.lineage import searched_values
from tuning.record.location import Location

REPORT_DIR = "report"
COLORS = {"completed": "#1f77b4", "stopped": "#ff7f0e", "errored": "#d62728",
          "running": "#7f7f7f", "pending": "#7f7f7f"}
# fANOVA over fewer completed trials says little: below this, every trial's value at the first
# rung (which every trial reached) stands in for its final one.
IMPORTANCE_MIN_COMPLETED = 5


def asha_rungs(spec: SweepSpec) -> list[int]:
    """The epochs at which ASHA compares trials (none for FIFO)."""
    return spec.scheduler.rungs if spec.scheduler.name == "asha" else []


def _curve(trial: TrialRecord, metric: str) -> tuple[list[int], list[float]]:
    points = [(e.epoch, e.metrics[metric]) for e in trial.history
              if is_finite_number(e.metrics.get(metric))]
    return [p[0] for p in points], [p[1] for p in points]


def _best_trial(ledger: Ledger) -> TrialRecord | None:
    ranked = ledger.ranked()
    return ranked[0] if ranked and ranked[0].best_epoch(ledger.spec.metric,
                                                        ledger.spec.mode) else None


def plot_learning_curves(ledger: Ledger, out: Path) -> list[str]:
    """Draws every trial's curve into ``out``; returns the trials drawn."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    spec, metric = ledger.spec, ledger.spec.metric
    best = _best_trial(ledger)
    drawn = []
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=110)
    for rung in asha_rungs(spec):
        ax.axvline(rung, color="#bbbbbb", linestyle=":", linewidth=1, zorder=0)
        ax.text(rung, 1.0, f" rung {rung}", transform=ax.get_xaxis_transform(), fontsize=8,
                color="#888888", va="top")
    for trial in ledger.trials.values():
        epochs, values = _curve(trial, metric)
        if not epochs:
            continue
        drawn.append(trial.trial_id)
        color, is_best = COLORS.get(trial.status, "#7f7f7f"), trial is best
        ax.plot(epochs, values, color=color, alpha=1.0 if is_best else 0.55,
                linewidth=2.8 if is_best else 1.2, zorder=3 if is_best else 2)
        if trial.status == "stopped":
            ax.plot(epochs[-1], values[-1], marker="x", color=color, markersize=7,
                    markeredgewidth=2, zorder=3)
        if is_best:
            ax.annotate(f"best: {trial.trial_id}", (epochs[-1], values[-1]),
                        textcoords="offset points", xytext=(6, 4), fontsize=9, color=color)
    handles = [Line2D([], [], color=COLORS["completed"], label="completed"),
               Line2D([], [], color=COLORS["stopped"], marker="x",
                          label="stopped early by ASHA (x: where)"),
               Line2D([], [], color=COLORS["errored"], label="errored"),
               Line2D([], [], color="#bbbbbb", linestyle=":", label="ASHA rung")]
    ax.legend(handles=handles, loc="lower right", fontsize=9, framealpha=0.9)
    counts = {s: sum(t.status == s for t in ledger.trials.values())
              for s in ("completed", "stopped")}
    ax.set_title(f"Learning curves: {len(ledger.trials)} trials, {counts['completed']} "
                 f"completed, {counts['stopped']} stopped early")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_xlim(0.5, spec.scheduler.max_epochs + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.25)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return drawn


# Where a trial that does not have a parameter (another branch of a conditional choice) crosses
# its axis: below the axis's range, labelled.
ABSENT = -0.12


def _axis(values: list[Any], dist: Any) -> tuple[list[float], list[tuple[float, str]]]:
    """Positions in [0, 1] of ``values`` on a parameter's axis, and its tick labels; a trial
    without the parameter (None) at :data:`ABSENT`."""
    if any(v is None for v in values):
        present = [v for v in values if v is not None]
        placed, labels = _axis(present, dist) if present else ([], [])
        found = iter(placed)
        return ([ABSENT if v is None else next(found) for v in values],
                [*labels, (ABSENT, "n/a (other branch)")])
    if isinstance(dist, Choice) or not all(isinstance(v, int | float) for v in values):
        choices = list(dist.values) if isinstance(dist, Choice) else sorted(set(map(str, values)))
        where = {str(c): i / max(1, len(choices) - 1) for i, c in enumerate(choices)}
        return [where[str(v)] for v in values], [(where[str(c)], str(c)) for c in choices]
    low, high = float(dist.low), float(dist.high)
    log = isinstance(dist, LogUniform)

    def scale(v: float) -> float:
        return math.log(v) if log else v

    span = (scale(high) - scale(low)) or 1.0
    positions = [(scale(float(v)) - scale(low)) / span for v in values]
    ticks = [low * (high / low) ** (i / 4) if log else low + (high - low) * i / 4
             for i in range(5)]
    spec = ".0f" if isinstance(dist, IntRange) else ".2g"
    return positions, [((scale(t) - scale(low)) / span, format(t, spec)) for t in ticks]


def _axis_label(name: str, width: int = 18) -> str:
    """``name`` wrapped at its dots, so that long nested keys do not run into each other."""
    lines = [""]
    for part in name.split("."):
        piece = f".{part}" if lines[-1] else part
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append(piece)
        else:
            lines[-1] += piece
    return "\n".join(lines)


def plot_pbt_schedules(ledger: Ledger, out: Path) -> list[str]:
    """Draws, for each key population-based training mutates, every trial's value over its
    epochs (a step at each exploit, an arrow from the donor it continued from) into ``out``;
    returns the trials that were moved."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    spec = ledger.spec
    keys = spec.pbt_mutated
    fig, axes = plt.subplots(len(keys), 1, figsize=(9, 2.6 * len(keys) + 0.6), dpi=110,
                             squeeze=False)
    moved = []
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for n, trial in enumerate(ledger.trials.values()):
        schedule = trial.schedule()
        if trial.lineage:
            moved.append(trial.trial_id)
        color = colors[n % len(colors)]
        # Each entry holds from its first epoch to the epoch before the next one starts.
        ends = [entry["from_epoch"] - 1 for entry in schedule[1:]] + [max(trial.epochs, 1)]
        for ax, key in zip(axes[:, 0], keys, strict=True):
            for entry, end in zip(schedule, ends, strict=True):
                value = entry["values"].get(key)
                start = entry["from_epoch"] - (0.5 if "donor" in entry else 0)
                ax.plot([start, max(start, end)], [value, value], color=color, alpha=0.8,
                        linewidth=1.6, label=trial.trial_id if entry is schedule[0] else None)
                if "donor" in entry:
                    donor = ledger.trials.get(entry["donor"])
                    donor_value = _value_at(donor, key, entry["from_epoch"] - 1)
                    if donor_value is not None:
                        ax.annotate("", (start, value), (start - 0.5, donor_value),
                                    arrowprops={"arrowstyle": "->", "color": color})
    for ax, key in zip(axes[:, 0], keys, strict=True):
        dist = spec.search_space.distributions[key]
        if isinstance(dist, LogUniform):
            ax.set_yscale("log")
        ax.set_ylabel(_axis_label(key))
        ax.set_xlim(0.5, spec.scheduler.max_epochs + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.25)
    axes[0, 0].set_title(f"Population-based training: each trial's values by epoch; "
                         f"{len(moved)} of {len(ledger.trials)} moved (arrow: from the donor)")
    if len(ledger.trials) <= 10:
        axes[0, 0].legend(fontsize=8, loc="best")
    axes[-1, 0].set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return moved


def _value_at(trial: TrialRecord | None, key: str, epoch: int) -> Any:
    """The value of ``key`` that ``trial`` trained ``epoch`` with."""
    if trial is None:
        return None
    value = None
    for entry in trial.schedule():
        if entry["from_epoch"] <= epoch:
            value = entry["values"].get(key, value)
    return value


def plot_parallel_coordinates(ledger: Ledger, out: Path) -> list[str]:
    """Draws each trial's searched values and best metric into ``out``; returns the trials
    drawn."""
    import matplotlib.pyplot as plt
    from matplotlib import cm, colors

    spec, metric = ledger.spec, ledger.spec.metric
    searched = spec.search_space.searched
    trials: list[tuple[TrialRecord, float]] = []
    for trial in ledger.trials.values():
        best = trial.best_epoch(metric, spec.mode)
        if best is not None:
            trials.append((trial, best.metrics[metric]))
    fig, ax = plt.subplots(figsize=(max(7, 2.2 * (len(searched) + 1)), 5), dpi=110)
    if not trials or not searched:
        ax.text(0.5, 0.5, "no searched parameters or no results yet", ha="center")
        ax.set_axis_off()
    else:
        names = list(searched)
        columns, ticks = [], []
        for name in names:
            positions, labels = _axis([t.config.get(name) for t, _ in trials], searched[name])
            columns.append(positions)
            ticks.append(labels)
        scores = [v for _, v in trials]
        low, high = min(scores), max(scores)
        norm = colors.Normalize(low, high if high > low else low + 1e-9)
        columns.append([norm(v) for v in scores])
        ticks.append([(norm(low + (high - low) * i / 4), f"{low + (high - low) * i / 4:.3g}")
                      for i in range(5)])
        cmap = plt.get_cmap("viridis" if spec.mode == "max" else "viridis_r")
        # Worst first, so that the best lines are drawn on top.
        order = sorted(range(len(trials)), key=lambda i: scores[i] * (1 if spec.mode == "max"
                                                                      else -1))
        xs = list(range(len(columns)))
        for i in order:
            trial = trials[i][0]
            ax.plot(xs, [c[i] for c in columns], color=cmap(norm(scores[i])),
                    linewidth=2.0 if trial.status == "completed" else 1.0,
                    alpha=0.95 if trial.status == "completed" else 0.45,
                    linestyle="-" if trial.status == "completed" else "--")
        for x, labels in zip(xs, ticks, strict=True):
            ax.axvline(x, color="#444444", linewidth=1)
            for y, label in labels:
                ax.text(x + 0.03, y, label, fontsize=8, va="center", color="#333333")
        ax.set_xticks(xs, [*map(_axis_label, names), f"{metric}\n(best epoch)"], fontsize=9)
        ax.set_yticks([])
        ax.set_ylim(ABSENT - 0.05 if any(t == ABSENT for c in columns for t in c) else -0.05,
                    1.05)
        ax.set_xlim(-0.2, len(columns) - 0.6)
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
        fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=metric, pad=0.02)
        ax.set_title("Searched values and the metric: solid = completed, dashed = stopped early")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return [t.trial_id for t, _ in trials] if searched else []


def parameter_importances(ledger: Ledger) -> tuple[dict[str, float], str] | None:
    """Optuna's fANOVA importances, and what they were computed over (None: nothing to
    compute them over).

    Over the completed trials' final values when there are enough of them; otherwise over every
    trial's value at the first epoch all of them reached (ASHA's first rung).
    """
    import optuna

    from tuning.driver.warm_start import optuna_trials

    spec, metric = ledger.spec, ledger.spec.metric
    if len(spec.search_space.searched) < 2:
        return None
    trials = [t for t in optuna_trials(ledger) if t.state.name == "COMPLETE"]
    basis = f"the final {metric} of {len(trials)} completed trials"
    if spec.multi_objective:
        # Importances for the first objective; Optuna takes no intermediate values of several.
        trials = [optuna.trial.create_trial(params=t.params, distributions=t.distributions,
                                            value=t.values[0]) for t in trials]
        basis += " (the first objective)"
    elif len(trials) < IMPORTANCE_MIN_COMPLETED:
        ended = [t for t in optuna_trials(ledger) if t.intermediate_values]
        epoch = min((max(t.intermediate_values) for t in ended), default=0)
        trials = [optuna.trial.create_trial(params=t.params, distributions=t.distributions,
                                            value=t.intermediate_values[epoch])
                  for t in ended if epoch in t.intermediate_values]
        basis = f"{metric} at epoch {epoch} of {len(trials)} trials (too few completed)"
    if len(trials) < 2:
        return None
    if spec.search_space.is_conditional:
        # fANOVA takes the parameters every trial has: a branch's own arguments drop out.
        basis += "; the parameters every trial has"
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # its "new study created" line
    study = optuna.create_study(direction=spec.direction)
    study.add_trials(trials)
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    return dict(optuna.importance.get_param_importances(study, evaluator=evaluator)), basis


def plot_importances(importances: tuple[dict[str, float], str] | None, out: Path) -> None:
    import matplotlib.pyplot as plt

    values = importances[0] if importances else {}
    fig, ax = plt.subplots(figsize=(7, 0.5 * max(3, len(values)) + 1.4), dpi=110)
    if importances is None:
        ax.text(0.5, 0.5, "importances need two searched parameters and two trials with results",
                ha="center", va="center")
        ax.set_axis_off()
    else:
        names = list(values)[::-1]  # the most important on top
        ax.barh(names, [values[n] for n in names], color="#1f77b4")
        for y, name in enumerate(names):
            ax.text(values[name], y, f" {values[name]:.2f}", va="center", fontsize=9)
        ax.set_xlim(0, max(values.values()) * 1.2 or 1)
        ax.set_xlabel("importance (Optuna's fANOVA; sums to 1)")
        ax.set_title(f"Parameter importances\nover {importances[1]}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def plot_epochs(ledger: Ledger, out: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    max_epochs = ledger.spec.scheduler.max_epochs
    trials = sorted(ledger.trials.values(), key=lambda t: -t.epochs)
    fig_h = 0.28 * len(trials) + 2.0
    fig, ax = plt.subplots(figsize=(9, fig_h), dpi=110)
    names = [t.trial_id for t in trials][::-1]
    trained = [t.epochs for t in trials][::-1]
    saved = [max_epochs - t.epochs if t.status == "stopped" else 0 for t in trials][::-1]
    ax.barh(names, trained, color=[COLORS.get(t.status, "#7f7f7f") for t in trials][::-1])
    ax.barh(names, saved, left=trained, color="none", edgecolor="#aaaaaa", hatch="///")
    handles = [Patch(color=COLORS["completed"], label="trained, completed"),
               Patch(color=COLORS["stopped"], label="trained, stopped early"),
               Patch(facecolor="none", edgecolor="#aaaaaa", hatch="///",
                     label="saved by early stopping")]
    cost = ledger.cost()
    ax.set_title(f"Epochs per trial: {cost.epochs} trained, {cost.epochs_saved} saved by "
                 "early stopping")
    ax.set_xlabel("epochs")
    ax.set_xlim(0, max_epochs)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(axis="y", labelsize=8)
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.45 / fig_h, 1, 1))  # room for the legend below
    fig.savefig(out)
    plt.close(fig)


def plot_pareto_front(ledger: Ledger, out: Path) -> int:
    """Draws every scored trial in the first two objectives, the front joined by its steps;
    returns the number of trials on the front."""
    import matplotlib.pyplot as plt

    objectives = ledger.spec.objective_list[:2]
    metrics = [o.metric for o in ledger.spec.objective_list]
    fronts = ledger.fronts()
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    first: list[tuple[float, float]] = []
    for trial_id, front in fronts.items():
        record = ledger.trials[trial_id]
        point = record.last_scored_epoch(metrics)
        assert point is not None  # fronts() holds scored trials alone
        x, y = (point.metrics[o.metric] for o in objectives)
        feasible = total_violation(ledger.spec.constraint_list, point.metrics) == 0
        color = "#bbbbbb" if not feasible else "#d62728" if front == 1 else "#1f77b4"
        ax.scatter(x, y, color=color, marker="x" if record.status == "stopped" else "o",
                   s=36, zorder=3)
        if front == 1 and feasible:
            first.append((x, y))
            ax.annotate(trial_id, (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
    # The front as steps, in the first objective's order.
    first.sort(reverse=objectives[0].mode == "max")
    if len(first) > 1:
        ax.step([p[0] for p in first], [p[1] for p in first], where="post", color="#d62728",
                alpha=0.5, linewidth=1.2)
    arrows = {"max": "higher is better", "min": "lower is better"}
    ax.set_xlabel(f"{objectives[0].metric} ({arrows[objectives[0].mode]})")
    ax.set_ylabel(f"{objectives[1].metric} ({arrows[objectives[1].mode]})")
    more = (f"; {len(metrics) - 2} more objective(s) not drawn" if len(metrics) > 2 else "")
    ax.set_title(f"Pareto front: {len(first)} of {len(fronts)} trials (red; x: stopped early, "
                 f"grey: breaks a constraint{more})", fontsize=10)
    ax.grid(alpha=0.25)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return len(first)


def _table(rows: list[dict[str, Any]], metrics: list[str]) -> str:
    pareto = any("front" in row for row in rows)
    head = ["rank", *(["front"] if pareto else []), "trial", "status", "epochs", *metrics,
            "worker-s", "config"]
    cells = []
    for rank, row in enumerate(rows, start=1):
        found = (row["values"] or {}) if pareto else {metrics[0]: row["value"]}
        values = [metric_text(found.get(m)) for m in metrics]
        front = [str(row["front"] or "-")] if pareto else []
        config = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in row["config"].items())
        cells.append([str(rank), *front, row["trial_id"], row["status"], str(row["epochs"]),
                      *values, f"{row['worker_seconds']:.1f}", config])
    lines = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    lines += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in cells]
    return "\n".join([*lines, "</table>"])


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 7px}
th{background:#f4f4f4;text-align:left}.figures{display:flex;flex-wrap:wrap;gap:1em}"""


def write_report(experiment: str | Location, out: str | Path | None = None) -> Path:
    """Writes the report of ``experiment``; returns the HTML file's path.

    Args:
        experiment: The experiment directory or URI.
        out: The report's directory (default: ``EXPERIMENT/report`` for a local experiment,
            ``./report-NAME`` for a cloud one).
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    location = Location.parse(experiment)
    ledger = Ledger.load(location)
    default = Path(location.uri) / REPORT_DIR if location.is_local else Path(
        f"{REPORT_DIR}-{location.name}")
    directory = Path(out) if out else default
    directory.mkdir(parents=True, exist_ok=True)
    spec, metric = ledger.spec, ledger.spec.metric
    importances = parameter_importances(ledger)
    plot_learning_curves(ledger, directory / "learning_curves.png")
    plot_parallel_coordinates(ledger, directory / "parallel_coordinates.png")
    plot_importances(importances, directory / "importances.png")
    plot_epochs(ledger, directory / "epochs.png")
    pbt = spec.scheduler.name == "pbt"
    if pbt:
        plot_pbt_schedules(ledger, directory / "pbt_schedules.png")
    pareto_html = ""
    if ledger.pareto and len(spec.objective_list) > 1:
        members = plot_pareto_front(ledger, directory / "pareto_front.png")
        pareto_html = (f"<h2>Pareto front</h2><p>{members} trials no other beats in every "
                       "objective (within the constraints), each at its last epoch: "
                       "<code>lightsweep best EXPERIMENT --json</code> lists them.</p>"
                       '<img src="pareto_front.png" alt="Pareto front">')

    best = _best_trial(ledger)
    cost = ledger.cost()
    budget = budget_line(spec, ledger.trials.values())
    if best is not None:
        epoch = best.best_epoch(metric, spec.mode)
        assert epoch is not None
        best_html = (f"<p><b>Best trial {best.trial_id}</b>: {html.escape(metric)} = "
                     f"{epoch.metrics[metric]:.4f} at epoch {epoch.epoch} ({best.status}).<br>"
                     + ", ".join(html.escape(f"{k} = {v}")
                                 for k, v in searched_values(best.config,
                                                             spec.shown_keys).items())
                     + (f"<br>checkpoint: <code>{html.escape(epoch.checkpoint)}</code>"
                        if epoch.checkpoint else "") + "</p>")
    else:
        best_html = "<p>No trial has reported yet.</p>"
    everything = cost.worker_seconds + cost.worker_seconds_saved
    share = f" ({cost.worker_seconds_saved / everything:.0%})" if everything else ""
    objectives = ", ".join(f"{o.metric} ({o.mode})" for o in spec.objective_list) + (
        f" under {', '.join(spec.constraints)}" if spec.constraints else "")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>lightsweep report: {html.escape(location.name)}</title>
<style>{STYLE}</style></head><body>
<h1>Sweep {html.escape(location.name)}</h1>
<p>{len(ledger.trials)} of {spec.search.num_samples} trials, {html.escape(objectives)},
at most {spec.scheduler.max_epochs} epochs each; sampler {spec.search.sampler},
scheduler {spec.scheduler.name}. Experiment: <code>{html.escape(location.uri)}</code></p>
{best_html}
{pareto_html}
<h2>Cost</h2>
<p>{cost.epochs} epochs and {cost.worker_seconds:.1f} worker-seconds spent;
early stopping saved {cost.epochs_saved} epochs and about {cost.worker_seconds_saved:.1f}
worker-seconds{share} against running every trial to {spec.scheduler.max_epochs} epochs.</p>
{f"<p>{html.escape(budget)}</p>" if budget else ""}
<h2>Learning curves</h2><img src="learning_curves.png" alt="learning curves">
<h2>Searched values</h2><img src="parallel_coordinates.png" alt="parallel coordinates">
{'<h2>Population-based training</h2><img src="pbt_schedules.png" alt="schedules">' if pbt else ''}
<div class="figures"><div><h2>Parameter importances</h2>
<img src="importances.png" alt="importances"></div>
<div><h2>Epochs per trial</h2><img src="epochs.png" alt="epochs per trial"></div></div>
<h2>Leaderboard</h2>
{_table(ledger.rows(), spec.shown_metrics if ledger.pareto else [metric])}
</body></html>
"""
    index = directory / "index.html"
    tmp = directory / "index.html.tmp"
    tmp.write_text(page)
    tmp.replace(index)
    return index
