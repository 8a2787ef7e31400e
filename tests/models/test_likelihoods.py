"""Likelihoods against the formulas written out in numpy, on sparse and dense rows (with counts)."""

import numpy as np
import pytest
import torch

from cfrec.models.likelihoods import Gaussian, Logistic, Multinomial

rng = np.random.default_rng(0)
X = (rng.random((6, 9)) < 0.3) * rng.integers(1, 4, size=(6, 9)).astype(np.float64)  # counts, some rows empty-ish
X[0] = 0.0
X[1, 2] = 1.0
ETA = rng.normal(scale=2.0, size=(6, 9))


def numpy_multinomial(x, eta):
    log_softmax = eta - np.log(np.exp(eta).sum(1, keepdims=True))
    return (x * log_softmax).sum(1)


def numpy_logistic(x, eta):
    return (x * eta - np.log1p(np.exp(eta))).sum(1)


def numpy_gaussian(x, eta, c1, c0):
    c = np.where(x > 0, c1, c0)
    return -0.5 * (c * (x - eta) ** 2).sum(1)


CASES = [
    (Multinomial(), numpy_multinomial),
    (Logistic(), numpy_logistic),
    (Gaussian(c1=2.0, c0=0.1), lambda x, e: numpy_gaussian(x, e, 2.0, 0.1)),
]


@pytest.mark.parametrize("likelihood, reference", CASES)
@pytest.mark.parametrize("sparse", [False, True])
def test_log_prob_matches_numpy(likelihood, reference, sparse):
    x = torch.tensor(X)
    x = x.to_sparse_csr() if sparse else x
    got = likelihood.log_prob(x, torch.tensor(ETA))
    assert got.shape == (6,)
    np.testing.assert_allclose(got.numpy(), reference(X, ETA), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("likelihood", [c[0] for c in CASES])
def test_sparse_gradient_equals_dense(likelihood):
    grads = []
    for x in (torch.tensor(X), torch.tensor(X).to_sparse_csr()):
        eta = torch.tensor(ETA, requires_grad=True)
        likelihood.log_prob(x, eta).sum().backward()
        grads.append(eta.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_float32_sparse_rows_with_float64_logits():
    x = torch.tensor(X, dtype=torch.float32).to_sparse_csr()
    got = Multinomial().log_prob(x, torch.tensor(ETA))
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), numpy_multinomial(X, ETA), rtol=1e-10)
