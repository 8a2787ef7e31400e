"""Theorems 2 and 3 as property tests: Eq. 8 and Eq. 10 lower-bound the n-choose-k log-likelihood (Eq. 9).

Eq. 9 is enumerated exactly over all item subsets of size N_u (itertools.combinations), on a seeded
loop of small random cases (I ≤ 8, binary x with N_u ≥ 1, logits η of random scale).
"""

import itertools

import numpy as np
import torch
from scipy.special import logsumexp

from cfrec.models.likelihoods import Logistic, Multinomial


def n_choose_k_log_likelihood(x: np.ndarray, eta: np.ndarray) -> float:
    """Eq. 9: Σ_i x_i η_i − log Σ_{|c| = N_u} exp Σ_{i ∈ c} η_i."""
    n_u = int(x.sum())
    subsets = [eta[list(c)].sum() for c in itertools.combinations(range(len(eta)), n_u)]
    return float(x @ eta - logsumexp(subsets))


def random_cases(n_cases: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(n_cases):
        n_items = int(rng.integers(1, 9))
        x = np.zeros(n_items)
        x[rng.choice(n_items, size=int(rng.integers(1, n_items + 1)), replace=False)] = 1.0
        yield x, rng.normal(scale=rng.uniform(0.1, 5.0), size=n_items)


def _log_prob(likelihood, x: np.ndarray, eta: np.ndarray) -> float:
    return float(likelihood.log_prob(torch.tensor(x)[None], torch.tensor(eta)[None])[0])


def test_theorem_2_multinomial_lower_bounds_n_choose_k():
    for x, eta in random_cases():
        assert _log_prob(Multinomial(), x, eta) <= n_choose_k_log_likelihood(x, eta) + 1e-9


def test_theorem_3_logistic_lower_bounds_n_choose_k():
    for x, eta in random_cases(seed=1):
        assert _log_prob(Logistic(), x, eta) <= n_choose_k_log_likelihood(x, eta) + 1e-9


def test_the_bounds_are_tight_where_the_proofs_say():
    for x, eta in random_cases(seed=2):
        n_u = int(x.sum())
        exact = n_choose_k_log_likelihood(x, eta)
        if n_u == 1:  # one draw: the multinomial is the n-choose-1 model
            np.testing.assert_allclose(_log_prob(Multinomial(), x, eta), exact, rtol=1e-12)
        # Theorem 3's bound closes as the logits separate the clicked items from the others (σ(η) → x): with
        # η = ±m, Eq. 10 and Eq. 9 both tend to 0 and their gap shrinks with m
        separated = [np.where(x > 0, m, -m) for m in (2.0, 8.0, 16.0)]
        gaps = [n_choose_k_log_likelihood(x, e) - _log_prob(Logistic(), x, e) for e in separated]
        assert gaps[0] > gaps[1] > gaps[2] >= -1e-9 and gaps[2] < 1e-5 * len(x)
