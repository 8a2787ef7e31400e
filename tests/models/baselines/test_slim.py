"""SLIM: W is sparse, non-negative with zero diagonal, and an exact copy of an item gets the weight."""

import numpy as np
import scipy.sparse as sp

from cfrec.data.split import Split
from cfrec.models.baselines import SLIM
from tests.conftest import random_binary


def _split(train: sp.csr_matrix) -> Split:
    return Split(train, train[:1], train[:1], train[:1], train[:1])


def test_weights_nonnegative_zero_diagonal_and_copy_gets_weight() -> None:
    train = random_binary(60, 10, 0.3, seed=5).toarray()
    train[:, 9] = train[:, 4]  # item 9 is an exact copy of item 4
    train = sp.csr_matrix(train)
    model = SLIM(n_items=10, l1=0.1, l2=0.1, n_jobs=1, chunks_per_job=3).fit(_split(train))
    w = model.W.toarray()
    assert sp.isspmatrix_csr(model.W)
    assert (w >= 0).all() and (np.diag(w) == 0).all()
    assert w[4, 9] > 0.9 and w[9, 4] > 0.9  # each copy is predicted from the other
    assert w[4, 9] == w[:, 9].max() and w[9, 4] == w[:, 4].max()
    assert np.allclose(model.score(train[:5]).numpy(), train[:5].toarray() @ w, atol=1e-6)
    assert model.chosen["l1_ratio"] == 0.5 and model.chosen["sklearn_alpha"] == 0.2 / 60


def test_matches_a_direct_elastic_net_and_parallel_run() -> None:
    train = random_binary(40, 8, 0.35, seed=6)
    serial = SLIM(n_items=8, l1=0.5, l2=1.0, n_jobs=1, chunks_per_job=1).fit(_split(train)).W.toarray()
    parallel = SLIM(n_items=8, l1=0.5, l2=1.0, n_jobs=2, chunks_per_job=2).fit(_split(train)).W.toarray()
    assert np.array_equal(serial, parallel)
    x = train.toarray().astype(np.float64)
    j = 3

    def objective(w: np.ndarray) -> float:  # SLIM's: ½‖x_j − Xw‖² + (l2/2)‖w‖² + l1‖w‖₁
        return 0.5 * np.sum((x[:, j] - x @ w) ** 2) + 0.5 * 1.0 * np.sum(w**2) + 0.5 * np.abs(w).sum()

    rng = np.random.default_rng(0)
    for _ in range(20):  # no feasible perturbation (w >= 0, w_j = 0) improves the SLIM objective
        other = np.clip(serial[:, j] + rng.normal(scale=0.05, size=8), 0, None)
        other[j] = 0
        assert objective(serial[:, j]) <= objective(other) + 1e-6
