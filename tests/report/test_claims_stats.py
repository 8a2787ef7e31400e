"""The seed-aware test (`cfrec.report.stats`) checked by simulation: its false-positive rate on rows that differ only
in their seeds, its power and coverage on a known shift, its fallbacks for one seed, TOST and Holm."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from cfrec.report.stats import (
    SEEDS_AND_USERS,
    USERS_ONLY,
    Estimate,
    from_means,
    holm,
    interval,
    p_two_sided,
    seed_aware,
    users_only,
)

STUDIES, USERS, ALPHA = 400, 200, 0.05


def simulate(rng: np.random.Generator, n_a: int, n_b: int, shift: float = 0.0, seed_sd: float = 0.01,
             noise_sd: float = 0.08, user_sd: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """STUDIES studies of two rows on the same USERS: a user effect shared by both rows, a seed effect that moves
    every user of a run together, per-(seed, user) noise, and `shift` added to row a."""
    user = rng.normal(0.4, user_sd, (STUDIES, 1, USERS))
    a = user + shift + rng.normal(0, seed_sd, (STUDIES, n_a, 1)) + rng.normal(0, noise_sd, (STUDIES, n_a, USERS))
    b = user + rng.normal(0, seed_sd, (STUDIES, n_b, 1)) + rng.normal(0, noise_sd, (STUDIES, n_b, USERS))
    return a, b


def rejections(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Share of studies where the seed-aware test, and the old users-only test, reject Δ = 0 at ALPHA."""
    diff, se, df, _ = seed_aware(a, b)
    old = users_only(a, b)
    return float(np.mean(p_two_sided(diff, se, df) < ALPHA)), float(np.mean(p_two_sided(*old) < ALPHA))


@pytest.mark.parametrize(("n_a", "n_b"), [(3, 3), (5, 5), (3, 5)])
def test_false_positive_rate_is_near_alpha_where_the_users_only_test_is_anti_conservative(n_a: int, n_b: int):
    """Rows that differ only in their seeds (seed effect 0.01, per-user noise 0.08, 200 users)."""
    new, old = rejections(*simulate(np.random.default_rng(23), n_a, n_b))
    assert 0.02 <= new <= 0.09
    assert old > 0.2  # the users-only test reads seed luck as a difference


def test_false_positive_rate_without_any_seed_effect_stays_near_alpha():
    """No seed effect at all: the user term must not be double-counted into a test that never rejects."""
    new, old = rejections(*simulate(np.random.default_rng(5), 3, 3, seed_sd=0.0))
    assert 0.02 <= new <= 0.09 and 0.02 <= old <= 0.09


def test_false_positive_rate_when_seeds_move_groups_of_users_differently():
    """A seed that helps one group of users and hurts another (not one common shift) is still seed variance."""
    rng = np.random.default_rng(11)
    weights = rng.dirichlet(np.full(5, 0.3), USERS)  # each user's membership of 5 groups

    def row(n: int) -> np.ndarray:
        return rng.normal(0, 0.02, (STUDIES, n, 5)) @ weights.T + rng.normal(0, 0.08, (STUDIES, n, USERS))

    user = rng.normal(0.4, 0.15, (STUDIES, 1, USERS))
    diff, se, df, _ = seed_aware(user + row(3), user + row(3))
    assert 0.02 <= float(np.mean(p_two_sided(diff, se, df) < ALPHA)) <= 0.09


def test_a_known_shift_is_detected_and_covered_by_the_interval():
    """Row a is 0.03 above row b (about 4 seed SDs of a 5-seed mean difference): power high, 95 % CI covers it."""
    a, b = simulate(np.random.default_rng(7), 5, 5, shift=0.03)
    diff, se, df, method = seed_aware(a, b)
    low, high = interval(diff, se, df)
    assert method == SEEDS_AND_USERS
    assert np.mean(p_two_sided(diff, se, df) < ALPHA) > 0.9
    assert 0.92 <= np.mean((low < 0.03) & (0.03 < high)) <= 0.99
    assert np.mean(diff) == pytest.approx(0.03, abs=2e-3)


def test_one_seed_on_one_side_borrows_the_other_sides_seed_variance():
    a, b = simulate(np.random.default_rng(3), 1, 4)
    diff, se, df, method = seed_aware(a, b)
    assert method == f"{SEEDS_AND_USERS}, seed variance of a borrowed"
    # one estimate of the seed variance for both sides: about its n_b − 1 = 3 df, not those of two estimates
    assert np.all(df >= 3 - 1e-9) and np.median(df) < 3.5
    assert 0.02 <= float(np.mean(p_two_sided(diff, se, df) < ALPHA)) <= 0.09


def test_one_seed_on_both_sides_falls_back_to_the_users_only_paired_t_test():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.2, 0.6, (1, 30)), rng.uniform(0.2, 0.6, (1, 30))
    diff, se, df, method = seed_aware(a, b)
    assert method == USERS_ONLY and df == 29
    assert float(p_two_sided(diff, se, df)) == pytest.approx(stats.ttest_rel(a[0], b[0]).pvalue, rel=1e-9)


def test_seed_aware_variance_by_hand():
    """Two seeds × three users per row: seed terms, and the user term less the within-user seed noise."""
    a = np.array([[0.50, 0.40, 0.30], [0.52, 0.41, 0.36]])
    b = np.array([[0.45, 0.42, 0.20], [0.47, 0.40, 0.24]])
    diff, se, df, _ = seed_aware(a, b)

    def residual(x: np.ndarray) -> float:
        r = x - x.mean(1, keepdims=True) - x.mean(0, keepdims=True) + x.mean()
        return float((r ** 2).sum() / ((2 - 1) * (3 - 1)))

    seed_a, seed_b = np.var(a.mean(1), ddof=1) / 2, np.var(b.mean(1), ddof=1) / 2
    user = max(0.0, np.var(a.mean(0) - b.mean(0), ddof=1) - residual(a) / 2 - residual(b) / 2) / 3
    total = seed_a + seed_b + user
    assert diff == pytest.approx(a.mean() - b.mean())
    assert se == pytest.approx(math.sqrt(total))
    assert df == pytest.approx(total ** 2 / (seed_a ** 2 / 1 + seed_b ** 2 / 1 + user ** 2 / 2))


def test_from_means_is_welch_over_seeds_and_borrows_for_a_single_run():
    diff, se, df, _ = from_means([0.40, 0.41, 0.42], [0.385, 0.395])
    welch = stats.ttest_ind([0.40, 0.41, 0.42], [0.385, 0.395], equal_var=False)
    assert float(p_two_sided(diff, se, df)) == pytest.approx(welch.pvalue, rel=1e-9)
    diff, se, df, method = from_means([0.385], [0.40, 0.41, 0.42])
    assert "seed variance of a borrowed" in method and df == 2 and se == pytest.approx(math.sqrt(1e-4 * (1 + 1 / 3)))
    assert from_means([0.41], [0.40], 0.004, 0.003)[1:3] == (pytest.approx(0.005), math.inf)


def test_tost_and_the_equivalence_outcome():
    assert Estimate(0.001, 0.002, 100, "").equivalence(0.01, ALPHA) == "equivalent"
    assert Estimate(-0.02, 0.002, 100, "").equivalence(0.01, ALPHA) == "different (below)"
    assert Estimate(0.02, 0.002, 100, "").equivalence(0.01, ALPHA) == "different (above)"
    assert Estimate(-0.009, 0.004, 100, "").equivalence(0.01, ALPHA) == "inconclusive"
    e = Estimate(0.003, 0.002, 50, "")
    t = stats.t(50)
    assert e.tost(0.01) == pytest.approx(max(t.sf((0.003 + 0.01) / 0.002), t.cdf((0.003 - 0.01) / 0.002)))


def test_holm_step_down_by_hand():
    # sorted 0.01, 0.02, 0.04 (NaN not counted): 3 × 0.01, max(0.03, 2 × 0.02), max(0.04, 1 × 0.04)
    assert holm([0.04, 0.01, math.nan, 0.02]) == pytest.approx([0.04, 0.03, math.nan, 0.04], nan_ok=True)
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
