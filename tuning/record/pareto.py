"""Pareto ranking of points with several objectives, some constrained: the one place where a
multi-objective sweep decides what is better, for its scheduler's rungs
(:mod:`tuning.driver.pareto_asha`) and its leaderboard alike.

Points are tuples of objective values to *minimize* (:func:`minimized` turns a ``max`` objective
around). A point that breaks a constraint (violation > 0) ranks after every feasible one, the
less it breaks them the better, as in NSGA-II's constrained domination (Deb et al., 2002), which
Optuna's samplers use too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from tuning.config.spec import Constraint, Objective, total_violation
from tuning.record.records import is_finite_number

Point = tuple[float, ...]


def minimized(values: Sequence[float], modes: Sequence[str]) -> Point:
    """``values`` as objectives to minimize: those of a ``max`` mode negated."""
    return tuple(-v if m == "max" else v for v, m in zip(values, modes, strict=True))


def scored(metrics: Mapping[str, Any], objectives: Sequence[Objective],
           constraints: Sequence[Constraint]) -> tuple[Point, float] | None:
    """One report's point (its objectives, to minimize) and how far it breaks the constraints
    (:func:`tuning.config.spec.total_violation`); None when it lacks an objective's value."""
    values = [metrics.get(o.metric) for o in objectives]
    finite = [float(v) for v in values if is_finite_number(v)]
    if len(finite) < len(objectives):
        return None
    return minimized(finite, [o.mode for o in objectives]), total_violation(
        list(constraints), metrics)


def dominates(a: Point, b: Point) -> bool:
    """Whether ``a`` is no worse than ``b`` in every objective and better in one."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and a != b


def fronts(points: Sequence[Point]) -> list[int]:
    """Each point's non-dominated front: 0 for the Pareto front, 1 for the front of what is left
    without it, and so on (NSGA-II's fast non-dominated sorting)."""
    dominated_by = [0] * len(points)
    dominating: list[list[int]] = [[] for _ in points]
    for i, a in enumerate(points):
        for j in range(i + 1, len(points)):
            b = points[j]
            if dominates(a, b):
                dominating[i].append(j)
                dominated_by[j] += 1
            elif dominates(b, a):
                dominating[j].append(i)
                dominated_by[i] += 1
    rank = [0] * len(points)
    current = [i for i, n in enumerate(dominated_by) if n == 0]
    level = 0
    while current:
        following = []
        for i in current:
            rank[i] = level
            for j in dominating[i]:
                dominated_by[j] -= 1
                if dominated_by[j] == 0:
                    following.append(j)
        current, level = following, level + 1
    return rank


def crowding(points: Sequence[Point]) -> list[float]:
    """NSGA-II's crowding distance of each point within one front: infinite at the ends of each
    objective's range, larger where a point's neighbours are farther (a sparser, more valuable
    part of the front)."""
    distance = [0.0] * len(points)
    if not points:
        return distance
    for k in range(len(points[0])):
        order = sorted(range(len(points)), key=lambda i: points[i][k])
        low, high = points[order[0]][k], points[order[-1]][k]
        distance[order[0]] = distance[order[-1]] = math.inf
        if high == low:
            continue
        for before, here, after in zip(order, order[1:], order[2:], strict=False):
            distance[here] += (points[after][k] - points[before][k]) / (high - low)
    return distance


def pareto_order(points: Sequence[Point], violations: Sequence[float] | None = None) -> list[int]:
    """Indices of ``points`` best first: feasible points by front, then by crowding distance
    (larger first), then by their first objective; infeasible ones after, by violation.

    Args:
        points: Objective values to minimize.
        violations: How much each point breaks its constraints (0 or less: feasible); None:
            every point is feasible.
    """
    violations = list(violations) if violations is not None else [0.0] * len(points)
    feasible = [i for i, v in enumerate(violations) if v <= 0]
    rank = fronts([points[i] for i in feasible])
    spread: dict[int, float] = {}
    for level in set(rank):
        members = [feasible[n] for n, r in enumerate(rank) if r == level]
        for i, d in zip(members, crowding([points[i] for i in members]), strict=True):
            spread[i] = d
    level_of = dict(zip(feasible, rank, strict=True))
    ordered = sorted(feasible, key=lambda i: (level_of[i], -spread[i], points[i][0], i))
    infeasible = sorted((i for i, v in enumerate(violations) if v > 0),
                        key=lambda i: (violations[i], i))
    return ordered + infeasible


def front_numbers(points: Sequence[Point], violations: Sequence[float] | None = None) -> list[int]:
    """Each point's front, numbered from 1 as a leaderboard shows it; infeasible points come
    after the feasible fronts, on fronts of their own by violation."""
    violations = list(violations) if violations is not None else [0.0] * len(points)
    feasible = [i for i, v in enumerate(violations) if v <= 0]
    number = [0] * len(points)
    rank = fronts([points[i] for i in feasible])
    for i, r in zip(feasible, rank, strict=True):
        number[i] = r + 1
    last = max(rank, default=-1) + 1
    for n, v in enumerate(sorted({v for v in violations if v > 0}), start=1):
        for i, w in enumerate(violations):
            if w == v:
                number[i] = last + n
    return number


def hypervolume_2d(points: Sequence[Point], reference: Point) -> float:
    """The area that two-objective ``points`` (to minimize) dominate, bounded by ``reference``:
    the standard measure of a whole front's quality (larger is better)."""
    inside = sorted(p for p in points if p[0] < reference[0] and p[1] < reference[1])
    area, ceiling = 0.0, reference[1]
    for x, y in inside:
        if y < ceiling:
            area += (reference[0] - x) * (ceiling - y)
            ceiling = y
    return area
