"""Pareto ranking: fronts, spread along a front, constraints first, hypervolume."""

from __future__ import annotations

import math

import pytest

from tuning.record.pareto import (
    crowding,
    dominates,
    front_numbers,
    fronts,
    hypervolume_2d,
    minimized,
    pareto_order,
)


def test_a_max_objective_is_turned_around_to_minimize() -> None:
    assert minimized([0.9, 1000.0], ["max", "min"]) == (-0.9, 1000.0)


def test_domination_needs_no_worse_everywhere_and_better_somewhere() -> None:
    assert dominates((1, 1), (2, 1))
    assert not dominates((1, 1), (1, 1))
    assert not dominates((1, 3), (2, 1))  # a trade-off: neither dominates


def test_fronts_peel_the_non_dominated_off_in_layers() -> None:
    # (error, size): the three trade-offs, then two that each is beaten by one of them.
    points = [(0.1, 9.0), (0.5, 2.0), (0.3, 5.0), (0.2, 9.5), (0.6, 6.0), (0.7, 7.0)]
    assert fronts(points) == [0, 0, 0, 1, 1, 2]


def test_the_ends_of_a_front_are_the_least_crowded() -> None:
    distance = crowding([(0.0, 4.0), (1.0, 3.0), (3.0, 1.0), (4.0, 0.0)])
    assert distance[0] == distance[3] == math.inf
    # Each inner point: its neighbours' gap over the range, summed over objectives, 3/4 + 3/4.
    assert distance[1] == pytest.approx(1.5) and distance[2] == pytest.approx(1.5)


def test_order_ranks_by_front_then_spread_and_puts_the_infeasible_last() -> None:
    points = [(0.3, 5.0), (0.1, 9.0), (0.5, 2.0), (0.4, 6.0), (0.05, 1.0)]
    violations = [0.0, 0.0, 0.0, 0.0, 2.0]  # the best point breaks a constraint
    order = pareto_order(points, violations)
    assert order[:3] == [1, 2, 0]  # the front's ends first (infinite spread), by first objective
    assert order[3:] == [3, 4]
    assert front_numbers(points, violations) == [1, 1, 1, 2, 3]


def test_a_less_infeasible_point_ranks_before_a_more_infeasible_one() -> None:
    assert pareto_order([(0.0, 0.0), (1.0, 1.0)], [5.0, 1.0]) == [1, 0]
    assert front_numbers([(0.0, 0.0), (1.0, 1.0)], [5.0, 1.0]) == [2, 1]


def test_hypervolume_is_the_area_the_front_dominates_within_the_reference() -> None:
    # (1, 2) covers [1,4]x[2,4] = 6; (2, 1) adds [2,4]x[1,2] = 2.
    assert hypervolume_2d([(1.0, 2.0), (2.0, 1.0)], (4.0, 4.0)) == pytest.approx(8.0)
    # A dominated point and one beyond the reference add nothing.
    assert hypervolume_2d([(1.0, 2.0), (2.0, 1.0), (3.0, 3.0), (5.0, 0.0)],
                          (4.0, 4.0)) == pytest.approx(8.0)
    assert hypervolume_2d([], (4.0, 4.0)) == 0.0
