"""EASE's Cholesky path gives the weights and metrics of the LU inverse it replaced."""

import numpy as np
import torch

from cfrec.data.split import Split
from cfrec.evaluation import evaluate
from cfrec.models.baselines import EASE
from cfrec.models.baselines.ease import gram, weights
from tests.conftest import random_binary


def _lu_weights(g: torch.Tensor, lam: float) -> torch.Tensor:
    """The former path: an LU inverse of G + λI in float32."""
    p = torch.linalg.inv(g + lam * torch.eye(g.shape[0]))
    p /= -p.diagonal().clone()
    p.diagonal().zero_()
    return p


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
        assert evaluate(model, split.test_tr, split.test_te) == evaluate(lu, split.test_tr, split.test_te)


def test_lu_solver_is_the_former_path_bit_for_bit():
    m = random_binary(300, 60, 0.1, 4)
    g = gram(m, torch.device("cpu"))
    assert torch.equal(weights(g, 20.0, "lu"), _lu_weights(g, 20.0))
