"""pass@k against values computed by hand from 1 - C(n-c, k) / C(n, k) (Chen et al. 2021)."""

from __future__ import annotations

import math

import pytest

from gfpo_bench.eval.passk import mean_pass_at_k, pass_at_k


@pytest.mark.parametrize(
    "n, c, k, expected",
    [
        (5, 2, 1, 0.4),  # 1 - C(3,1)/C(5,1) = 1 - 3/5
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5) = 1 - 21/252 = 0.91666...
        (10, 0, 1, 0.0),  # no correct sample
        (10, 0, 10, 0.0),
        (10, 10, 1, 1.0),  # every sample correct
        (5, 4, 2, 1.0),  # n - c = 1 < k = 2: every pair holds a correct sample
        (1, 1, 1, 1.0),
    ],
)
def test_hand_computed_values(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_1_is_the_fraction_correct() -> None:
    assert pass_at_k(200, 37, 1) == pytest.approx(37 / 200)  # 1 - (n-c)/n


def test_large_n_is_stable_and_matches_exact_binomials() -> None:
    # C(1000, 100) has ~140 digits; the product form never builds it. Exact integers as reference.
    n, c, k = 1000, 3, 100
    exact = 1 - math.comb(n - c, k) / math.comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(exact, rel=1e-12)
    assert 0.0 <= pass_at_k(10_000, 1, 9_999) <= 1.0


def test_monotone_in_k_and_c() -> None:
    assert pass_at_k(20, 3, 1) < pass_at_k(20, 3, 5) < pass_at_k(20, 3, 10)
    assert pass_at_k(20, 2, 5) < pass_at_k(20, 3, 5)


def test_mean_over_problems() -> None:
    # k=1: (0.4 + 0.0 + 1.0) / 3
    assert mean_pass_at_k([(5, 2), (5, 0), (5, 5)], k=1) == pytest.approx(1.4 / 3)
    # k=2: (0.7 + 0.0) / 2
    assert mean_pass_at_k([(5, 2), (5, 0)], k=2) == pytest.approx(0.35)


@pytest.mark.parametrize("n, c, k", [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6)])
def test_invalid_counts_raise(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_empty_mean_raises() -> None:
    with pytest.raises(ValueError):
        mean_pass_at_k([], k=1)
