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


def _plain_multinomial(x_dense: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    return (x_dense * torch.log_softmax(logits, dim=1)).sum(1)


@pytest.mark.parametrize("block", [9, 20, 1 << 18])  # one row (or item) per block, a few, all at once
@pytest.mark.parametrize("item_major", [False, True])
def test_multinomial_blocks_and_layouts_match_plain_autograd(monkeypatch, block, item_major):
    from cfrec.models import likelihoods

    monkeypatch.setattr(likelihoods, "CPU_BLOCK", block)
    g = torch.tensor(rng.normal(size=6))
    ref = torch.tensor(ETA, requires_grad=True)
    (_plain_multinomial(torch.tensor(X), ref) * g).sum().backward()
    logits = torch.tensor(ETA).t().contiguous().t() if item_major else torch.tensor(ETA)
    logits.requires_grad_()
    got = Multinomial().log_prob(torch.tensor(X).to_sparse_csr(), logits)
    (got * g).sum().backward()
    torch.testing.assert_close(got, _plain_multinomial(torch.tensor(X), ref.detach()), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(logits.grad, ref.grad, rtol=1e-12, atol=1e-12)
    assert logits.grad.stride() == logits.stride()


@pytest.mark.parametrize("item_major", [False, True])
def test_multinomial_on_bf16_logits_computes_in_float32(item_major):
    """bf16 logits (a decoder under autocast): the value is float32 and equals the float32 computation on
    the same bf16-rounded logits; the gradient comes back in bf16."""
    eta = torch.tensor(ETA, dtype=torch.float32).to(torch.bfloat16)
    logits = (eta.t().contiguous().t() if item_major else eta.clone()).requires_grad_()
    x = torch.tensor(X, dtype=torch.float32).to_sparse_csr()
    got = Multinomial().log_prob(x, logits)
    assert got.dtype == torch.float32
    ref = eta.float().requires_grad_()
    expected = _plain_multinomial(torch.tensor(X, dtype=torch.float32), ref)
    torch.testing.assert_close(got, expected.detach(), rtol=1e-6, atol=1e-5)
    got.sum().backward()
    expected.sum().backward()
    assert logits.grad.dtype == torch.bfloat16
    torch.testing.assert_close(logits.grad.float(), ref.grad, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("likelihood", [Logistic(), Gaussian(c1=2.0, c0=0.1)])
def test_bf16_logits_are_upcast(likelihood):
    eta = torch.tensor(ETA, dtype=torch.float32).to(torch.bfloat16)
    x = torch.tensor(X, dtype=torch.float32).to_sparse_csr()
    got = likelihood.log_prob(x, eta)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, likelihood.log_prob(x, eta.float()))


def _baseline(name: str, **kwargs):
    """A tiny aWAE, RecVAE or CDAE (conf/model/<name>.yaml at TINY_MODEL size) on 9 items."""
    from hydra.utils import instantiate

    from tests.conftest import TINY_MODEL, compose_train

    torch.manual_seed(0)
    return instantiate(compose_train(f"model={name}", *TINY_MODEL[name]).model, n_items=9, _convert_="all", **kwargs)


def _old_multinomial_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The formula the baselines wrote by hand before using the shared likelihood."""
    return -(torch.log_softmax(logits, dim=-1) * x).sum(-1)


def test_awae_and_recvae_losses_equal_their_hand_written_multinomial():
    x = torch.tensor(X, dtype=torch.float32).to_sparse_csr()
    dense = x.to_dense()
    awae = _baseline("awae")
    torch.manual_seed(1)
    nll = awae.loss_terms(x)["nll"]
    torch.manual_seed(1)
    torch.testing.assert_close(nll, _old_multinomial_nll(awae.decode(awae.encode(x)), dense).mean())
    recvae = _baseline("recvae")
    torch.manual_seed(2)
    loss = recvae.decoder_loss(x)
    torch.manual_seed(2)
    mu, logvar = recvae.encoder(x, 0.0)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    torch.testing.assert_close(loss, _old_multinomial_nll(recvae.decoder(z), dense).mean())


@pytest.mark.parametrize("loss", ["logistic", "multinomial"])
def test_cdae_objective_equals_its_hand_written_loss(loss):
    cdae = _baseline("cdae", loss=loss)
    x = torch.tensor(X, dtype=torch.float32)
    logits, v = torch.tensor(ETA, dtype=torch.float32), torch.randn(6, cdae.hparams.latent_dim)
    old = (torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
           if loss == "logistic" else _old_multinomial_nll(logits, x))
    expected = old + 0.5 * cdae.hparams.weight_decay * (v**2).sum(-1)
    torch.testing.assert_close(cdae.objective(logits, x, v), expected)
    torch.testing.assert_close(cdae.objective(logits, x.to_sparse_csr(), v), expected)
