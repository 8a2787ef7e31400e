"""The seed-aware test of row A against row B on the same users, equivalence (TOST) and Holm's correction.

A comparison has, for each row, a matrix of per-user values: one line per seed (a run), one column per user,
the same users in both rows. Δ = mean(A) − mean(B) over seeds and users. Two things make Δ move if the study
were run again: new seeds (a seed shifts every user of its run together, so seeds are not replicated by users)
and new users. The model is a crossed mixed model, value = row + user + row × user + seed + residual, its variance
components estimated by the method of moments (two-way ANOVA), which gives Var(Δ) in closed form as the sum of
the two:

    Var(Δ) = s²(seed means of A)/n_A + s²(seed means of B)/n_B + max(0, S²_D − R_A/n_A − R_B/n_B)/U

- the first two terms are a Welch test over seeds: s² is the sample variance of a row's seed means (each a mean
  over the same U users, so the users' own level cancels in A − B). Conditional on the users it is the exact,
  unbiased variance of Δ, whatever the seed does to each user;
- the last term adds the users' sampling variance: S²_D is the variance over users of the paired difference of
  seed-averaged values, less the part of it that is seed noise within each user (R = the residual mean square of
  the row's seeds × users table, the two-way ANOVA without replication), so that seed noise is not counted twice.
  Adding S²_D/U whole (as a first review of the study did) counts the within-user seed noise both there and in
  the seed means' variance; on the archived runs that noise is as large as the whole seed term.

Degrees of freedom: Welch–Satterthwaite, n_A − 1 and n_B − 1 for the seed terms and U − 1 for the user term.
95 % CI = Δ ± t(0.975, df)·SE, p two-sided from the same t. Why this and not a two-level bootstrap: with the 3 to 5
seeds a row has, resampling seeds draws from at most 10 to 126 distinct sets and underestimates their variance by
(n − 1)/n, and resampling both levels counts the within-user seed noise twice; the closed form needs neither,
is exact in its seed part, vectorises over simulated studies (tests/report/test_claims_stats.py checks its
false-positive rate and power by simulation) and costs nothing next to a bootstrap. An iterative REML fit
(lme4-style) would need a new dependency for the same two variance components. docs/statistics.md has the
reasoning in full.

One seed on a side: its seed variance cannot be estimated. With at least two seeds on the other side, that side's
seed variance (and residual mean square) stands in for it (`seeds+users, seed variance of <side> borrowed`);
with one seed on both sides only the users' variance is left, which is the old paired t-test over users
(`users only (1 seed each)`): a seed effect is then not in the interval at all.

Equivalence and one-sided claims are tested against bounds on Δ with the same SE and df: `p_above(b)` tests
H0 Δ ≤ b, `p_below(b)` H0 Δ ≥ b; TOST at margin M is max(p_above(−M), p_below(M)). Holm's step-down adjustment
controls the family-wise error over a family of such p values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

SEEDS_AND_USERS = "seeds+users"
USERS_ONLY = "users only (1 seed each)"
SEED_MEANS = "seed means (no per-user files)"
USERS_ONLY_MEANS = "users only (1 run each, no per-user files)"


def _welch_df(terms: Sequence[np.ndarray], dfs: Sequence[float | np.ndarray]) -> np.ndarray:
    """Welch–Satterthwaite degrees of freedom of a sum of variance terms, each with its own df."""
    total = sum(terms)
    denominator = sum(np.where(t > 0, t ** 2 / d, 0.0) for t, d in zip(terms, dfs))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, total ** 2 / np.where(denominator > 0, denominator, 1.0), np.inf)


def _residual_mean_square(x: np.ndarray) -> np.ndarray:
    """Residual mean square of a (..., seeds, users) table after seed and user means (two-way, no replication)."""
    n, users = x.shape[-2:]
    residual = x - x.mean(-1, keepdims=True) - x.mean(-2, keepdims=True) + x.mean((-2, -1), keepdims=True)
    return (residual ** 2).sum((-2, -1)) / ((n - 1) * (users - 1))


def seed_aware(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(Δ, SE, df, method) of mean(a) − mean(b) for per-user tables a (..., n_a seeds, U users) and b (..., n_b, U)
    of the same users in the same order; leading axes are independent studies (vectorised)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    (n_a, users), n_b = a.shape[-2:], b.shape[-2]
    diff = a.mean((-2, -1)) - b.mean((-2, -1))
    user_diff = a.mean(-2) - b.mean(-2)
    s2_users = user_diff.var(-1, ddof=1) if users > 1 else np.full(diff.shape, np.nan)
    if n_a < 2 and n_b < 2:
        se = np.sqrt(s2_users / users)
        return diff, se, np.full(diff.shape, float(users - 1)), USERS_ONLY
    sides = [(x.mean(-1).var(-1, ddof=1), _residual_mean_square(x)) if x.shape[-2] >= 2 else None for x in (a, b)]
    if None in sides:  # one seed on a side: the other side's variances stand in for it, as one term (one estimate)
        (seed_var, res), n_known = next(s for s in sides if s is not None), max(n_a, n_b)
        seed_terms, seed_dfs = [seed_var * (1 / n_a + 1 / n_b)], [n_known - 1]
        residual = res * (1 / n_a + 1 / n_b)
        method = f"{SEEDS_AND_USERS}, seed variance of {'a' if sides[0] is None else 'b'} borrowed"
    else:
        (var_a, res_a), (var_b, res_b) = sides
        seed_terms, seed_dfs = [var_a / n_a, var_b / n_b], [n_a - 1, n_b - 1]
        residual = res_a / n_a + res_b / n_b
        method = SEEDS_AND_USERS
    user_term = np.maximum(0.0, s2_users - residual) / users
    se = np.sqrt(sum(seed_terms) + user_term)
    return diff, se, _welch_df([*seed_terms, user_term], [*seed_dfs, users - 1]), method


def users_only(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Δ, SE, df) of the paired t-test over users of seed-averaged values: blind to seed effects (for comparison)."""
    d = np.asarray(a, dtype=np.float64).mean(-2) - np.asarray(b, dtype=np.float64).mean(-2)
    users = d.shape[-1]
    return d.mean(-1), d.std(-1, ddof=1) / math.sqrt(users), np.full(d.shape[:-1], float(users - 1))


def from_means(means_a: Sequence[float], means_b: Sequence[float], se_a: float = math.nan,
               se_b: float = math.nan) -> tuple[float, float, float, str]:
    """(Δ, SE, df, method) from the runs' means alone (runs without per-user files): Welch over seeds, a side with one
    run taking the other side's seed variance; one run on both sides: their per-user SEs `se_a`, `se_b` (normal)."""
    a, b = np.asarray(means_a, dtype=np.float64), np.asarray(means_b, dtype=np.float64)
    if not (a.size and b.size):
        return math.nan, math.nan, math.nan, SEED_MEANS
    diff = float(a.mean() - b.mean())
    if a.size < 2 and b.size < 2:
        return diff, math.hypot(se_a, se_b), math.inf, USERS_ONLY_MEANS
    if a.size < 2 or b.size < 2:
        known = a if a.size >= 2 else b
        se = math.sqrt(known.var(ddof=1) * (1 / a.size + 1 / b.size))
        return diff, se, float(known.size - 1), f"{SEED_MEANS}, seed variance of {'a' if a.size < 2 else 'b'} borrowed"
    terms = [np.asarray(a.var(ddof=1) / a.size), np.asarray(b.var(ddof=1) / b.size)]
    return diff, float(np.sqrt(sum(terms))), float(_welch_df(terms, [a.size - 1, b.size - 1])), SEED_MEANS


def p_two_sided(diff: np.ndarray, se: np.ndarray, df: np.ndarray) -> np.ndarray:
    """p of H0 Δ = 0 (t with df degrees of freedom); 1 when Δ and SE are both 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, np.asarray(diff) / np.where(se > 0, se, 1.0), np.where(np.asarray(diff) == 0, 0, np.inf))
    return 2 * stats.t.sf(np.abs(t), df)


def p_above(diff: np.ndarray, se: np.ndarray, df: np.ndarray, bound: float | np.ndarray) -> np.ndarray:
    """One-sided p of H0 Δ ≤ bound (small: Δ is shown to be above the bound)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return stats.t.sf((np.asarray(diff) - bound) / se, df)


def p_below(diff: np.ndarray, se: np.ndarray, df: np.ndarray, bound: float | np.ndarray) -> np.ndarray:
    """One-sided p of H0 Δ ≥ bound (small: Δ is shown to be below the bound)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return stats.t.cdf((np.asarray(diff) - bound) / se, df)


def interval(diff: np.ndarray, se: np.ndarray, df: np.ndarray,
             confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The two-sided t-interval Δ ± t((1 + confidence)/2, df)·SE."""
    half = stats.t.ppf(0.5 + confidence / 2, df) * se
    return np.asarray(diff) - half, np.asarray(diff) + half


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p values of one family (NaNs stay NaN and are not counted in it)."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(~np.isnan(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = order.size
    out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out


@dataclass(frozen=True)
class Estimate:
    """Δ = a − b with its SE, df and how they were estimated: what every test and interval is computed from."""

    diff: float
    se: float
    df: float
    method: str

    def ci(self, confidence: float = 0.95) -> tuple[float, float]:
        low, high = interval(self.diff, self.se, self.df, confidence)
        return float(low), float(high)

    @property
    def p(self) -> float:
        return float(p_two_sided(self.diff, self.se, self.df))

    def p_above(self, bound: float) -> float:
        return float(p_above(self.diff, self.se, self.df, bound))

    def p_below(self, bound: float) -> float:
        return float(p_below(self.diff, self.se, self.df, bound))

    def tost(self, margin: float) -> float:
        """p of the two one-sided tests of |Δ| ≥ margin (small: Δ is within ±margin)."""
        return max(self.p_above(-margin), self.p_below(margin))

    def equivalence(self, margin: float, alpha: float) -> str:
        """equivalent (TOST p < alpha: the (1 − 2·alpha) CI is inside ±margin), different (below / above: shown beyond
        the margin at alpha, one-sided) or inconclusive; "–" when a figure is NaN."""
        if any(math.isnan(x) for x in (self.diff, self.se, margin)):
            return "–"
        if self.tost(margin) < alpha:
            return "equivalent"
        if self.p_below(-margin) < alpha:
            return "different (below)"
        if self.p_above(margin) < alpha:
            return "different (above)"
        return "inconclusive"
