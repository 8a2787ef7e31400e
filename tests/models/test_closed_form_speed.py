"""EASE's Cholesky path gives the weights and metrics of the LU inverse it replaced.

The two solvers round differently (and differently again on another CPU or BLAS: AMX, AVX-512, OpenBLAS), so
their weights agree to a tolerance, and two items whose scores are that close may swap places in a user's
list: the metrics are compared to within what a couple of such swaps can move a mean over the test users.
"""

import numpy as np
import pytest
import torch

from cfrec.data.split import Split
from cfrec.metrics import evaluate
from cfrec.models.baselines import EASE
from cfrec.models.baselines.ease import gram, weights
from tests.conftest import random_binary


def _lu_weights(g: torch.Tensor, lam: float) -> torch.Tensor:
    """The former path: an LU inverse of G + λI in float32."""
    p = torch.linalg.inv(g + lam * torch.eye(g.shape[0]))
    p /= -p.diagonal().clone()
    p.diagonal().zero_()
    return p


#: one swap of two adjacent items in one user's list moves that user's NDCG@100 by at most 1 − 1/log2(3) ≈ 0.37
#: and a Recall by at most 1/k; over the 150 test users a couple of swaps stay below this
METRIC_ATOL = 5e-3


def test_cholesky_weights_and_metrics_match_the_lu_inverse():
    m = random_binary(900, 150, 0.08, 3)
    split = Split(m[:600], m[600:750], m[750:], m[600:750], m[750:])
    g = gram(split.train, torch.device("cpu"))
    before = g.clone()
    for lam in (5.0, 50.0, 500.0):
        new, old = weights(g, lam), _lu_weights(g, lam)
        assert torch.equal(g, before)  # G is restored
        np.testing.assert_allclose(new.numpy(), old.numpy(), rtol=0, atol=2e-6 * old.abs().max().item())
        model = EASE(150, lambdas=lam, device="cpu").fit(split)
        lu = EASE(150, lambdas=lam, device="cpu")
        lu.B = old
        ours, former = evaluate(model, split.test_tr, split.test_te), evaluate(lu, split.test_tr, split.test_te)
        assert ours.keys() == former.keys() and ours["n_users"] == former["n_users"] == 150
        for name in ("recall@20", "recall@50", "ndcg@100"):
            assert ours[name] == pytest.approx(former[name], abs=METRIC_ATOL), (lam, name)


def test_lu_solver_is_the_former_path_bit_for_bit():
    m = random_binary(300, 60, 0.1, 4)
    g = gram(m, torch.device("cpu"))
    assert torch.equal(weights(g, 20.0, "lu"), _lu_weights(g, 20.0))
