"""SIVAE encoder: the surrogate bound L_K rises with K, degenerate noise gives the Gaussian ELBO, stable logsumexp."""

import math

import pytest
import torch

from cfrec.models.encoders import gaussian_log_prob
from cfrec.models.priors import StandardNormal
from cfrec.models.sivae import SemiImplicitEncoder, mixture_log_prob
from tests.conftest import posteriors_fp32_and_bf16

I, D = 8, 2  # noqa: E741 (the paper's I items, D latent dims)


def _tiny(noise: str = "gaussian", **kw: object) -> SemiImplicitEncoder:
    torch.manual_seed(0)
    enc = SemiImplicitEncoder(
        I, hidden_dims=[6], latent_dim=D, noise_dims=[3, 3], layer_dim=6, noise=noise, dropout=0.0, **kw
    )
    for layer in enc.layers:  # a strongly noise-driven ψ, narrow σ: far from Gaussian
        torch.nn.init.normal_(layer.weight, std=1.5)
    torch.nn.init.normal_(enc.out.weight, std=1.5)
    torch.nn.init.constant_(enc.logvar.bias, -3.0)
    return enc.double()


def _bound(enc: SemiImplicitEncoder, k: int, n: int = 20_000, seed: int = 1) -> tuple[float, float]:
    """Monte Carlo mean and standard error of log p(x|z) + log p(z) − log_q over n draws for one fixed user."""
    torch.manual_seed(seed)
    enc.extra_psi = k
    x = torch.tensor([[1, 1, 0, 0, 1, 0, 0, 0]], dtype=torch.float64).expand(n, I)
    dec = torch.nn.Linear(D, I).double()
    with torch.no_grad():
        dec.weight.copy_(torch.linspace(-2, 2, D * I, dtype=torch.float64).view(I, D))
        dec.bias.zero_()
        post = enc(x)
        terms = (x * torch.log_softmax(dec(post.z), -1)).sum(-1) + StandardNormal().log_prob(post.z) - post.log_q
    return terms.mean().item(), terms.std().item() / math.sqrt(n)


def test_surrogate_bound_rises_with_k() -> None:
    enc = _tiny()
    est = [_bound(enc, k, seed=10 + k) for k in (0, 1, 10, 100)]
    for (lo, se_lo), (hi, se_hi) in zip(est, est[1:]):
        assert hi > lo - 3 * math.hypot(se_lo, se_hi)  # non-decreasing within MC error
    assert est[-1][0] - est[0][0] > 10 * math.hypot(est[0][1], est[-1][1])  # and clearly rising overall


@pytest.mark.parametrize("k", [0, 5])
def test_degenerate_noise_gives_the_gaussian_elbo(k: int) -> None:
    enc = _tiny(extra_psi=k)
    with torch.no_grad():
        for layer, n in zip(enc.layers, enc.noise_dims):
            layer.weight[:, -n:] = 0.0  # ε_t no longer reaches ℓ_t: ψ is a function of x only
    torch.manual_seed(3)
    post = enc(torch.rand(20_000, I, dtype=torch.float64).round())
    torch.testing.assert_close(post.log_q, gaussian_log_prob(post.z, post.mu, post.logvar))
    kl_mc = post.log_q - StandardNormal().log_prob(post.z)
    kl = StandardNormal().kl_gaussian(post.mu, post.logvar)
    assert abs((kl_mc - kl).mean()) < 4 * (kl_mc - kl).std() / math.sqrt(len(kl))


def test_mixture_log_prob_is_stable_with_extreme_components() -> None:
    z = torch.zeros(1, 3)
    psi = torch.stack([torch.zeros(1, 3), torch.full((1, 3), 1e4), torch.full((1, 3), -1e4)])
    logvar = torch.full((1, 3), -20.0)  # exp(log N) under/overflows; logsumexp must not
    out = mixture_log_prob(z, psi, logvar)
    torch.testing.assert_close(out, gaussian_log_prob(z, psi[0], logvar) - math.log(3))
    assert torch.isfinite(mixture_log_prob(z, psi[1:], logvar)).all()  # every component far away: finite


@pytest.mark.parametrize("mode", ["noise_mean", "psi_mean", "sample"])
@pytest.mark.parametrize("noise", ["bernoulli", "gaussian"])
def test_eval_sparse_equals_dense_and_shapes(mode: str, noise: str) -> None:
    enc = SemiImplicitEncoder(
        I, hidden_dims=[6, 5], latent_dim=D, noise_dims=[3, 2, 4], layer_dim=7, noise=noise, eval_mode=mode
    )
    x = (torch.rand(5, I) < 0.4).float()
    x[:, 0] = 1.0
    enc.eval()
    torch.manual_seed(4)
    dense = enc(x)
    torch.manual_seed(4)
    sparse = enc(x.to_sparse_csr())
    assert dense.z.shape == dense.logvar.shape == (5, D) and dense.log_q is None
    torch.testing.assert_close(sparse.z, dense.z)
    torch.testing.assert_close(sparse.logvar, dense.logvar)
    enc.train()
    post = enc(x.to_sparse_csr())
    assert post.z.shape == post.mu.shape == (5, D) and post.log_q.shape == (5,)


def test_gradient_reaches_every_parameter() -> None:
    enc = SemiImplicitEncoder(I, hidden_dims=[6], latent_dim=D, noise_dims=[3, 2], layer_dim=5, extra_psi=3)
    x = (torch.rand(4, I) < 0.5).float()
    x[:, 0] = 1.0
    post = enc(x.to_sparse_csr())
    (post.z.sum() + post.log_q.sum()).backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_options_raise() -> None:
    with pytest.raises(ValueError, match="eval_mode"):
        SemiImplicitEncoder(I, eval_mode="median")
    with pytest.raises(ValueError, match="noise"):
        SemiImplicitEncoder(I, noise="uniform")


def test_log_q_stays_fp32_under_bf16_autocast() -> None:
    torch.manual_seed(5)
    enc = SemiImplicitEncoder(40, hidden_dims=[16], latent_dim=8, noise_dims=[4], layer_dim=16, dropout=0.0)
    ref, post = posteriors_fp32_and_bf16(enc, seed=5)
    assert post.z.dtype == post.log_q.dtype == torch.float32
    torch.testing.assert_close(post.log_q, ref.log_q, atol=0.5, rtol=0.02)


def test_eq12_covariance_gives_each_psi_draw_its_own_sigma_and_the_surrogate_uses_it():
    enc = _tiny(covariance="noise")
    torch.nn.init.normal_(enc.logvar_noise.weight, std=1.0)
    x = torch.tensor([[1, 0, 1, 0, 1, 0, 0, 1]], dtype=torch.float64)
    h = enc.features(x)
    torch.manual_seed(3)
    psi, logvar = enc.draws(h, 4)
    assert logvar.shape == psi.shape == (4, 1, D) and not torch.allclose(logvar[0], logvar[1])
    z = torch.zeros(1, D, dtype=torch.float64)
    by_hand = torch.logsumexp(torch.stack([gaussian_log_prob(z, psi[k], logvar[k]) for k in range(4)]), 0) - math.log(4)
    torch.testing.assert_close(mixture_log_prob(z, psi, logvar), by_hand)
    assert SemiImplicitEncoder(I, covariance="x").logvar_noise is None
    with pytest.raises(ValueError, match="covariance"):
        SemiImplicitEncoder(I, covariance="full")


def test_psi_spread_is_zero_without_noise_weights_and_positive_with_them():
    enc = _tiny()
    x = torch.tensor([[1, 0, 1, 0, 1, 0, 0, 1], [0, 1, 1, 1, 0, 0, 1, 0]], dtype=torch.float64)
    assert enc.psi_spread(x) > 0.1  # ψ strongly noise-driven, σ narrow
    for layer in enc.layers:
        torch.nn.init.zeros_(layer.weight)  # ε no longer reaches ψ
    assert enc.psi_spread(x) == 0.0
