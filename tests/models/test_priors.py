"""Priors: the Gaussian KL against Monte Carlo, the VampPrior against a scipy mixture of the encoder's Gaussians."""

import numpy as np
import pytest
import scipy.stats
import torch
from scipy.special import logsumexp

from cfrec.models.encoders import GaussianEncoder, gaussian_log_prob
from cfrec.models.priors import StandardNormal, VampPrior


def test_standard_normal_log_prob_is_scipy():
    z = torch.randn(4, 3, dtype=torch.float64)
    expected = scipy.stats.norm.logpdf(z.numpy()).sum(1)
    np.testing.assert_allclose(StandardNormal().log_prob(z).numpy(), expected, rtol=1e-12)


def test_gaussian_kl_closed_form_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(3, 4, generator=g, dtype=torch.float64)
    logvar = torch.randn(3, 4, generator=g, dtype=torch.float64) * 0.5
    n = 200_000
    z = mu + torch.exp(0.5 * logvar) * torch.randn(n, 3, 4, generator=g, dtype=torch.float64)
    log_ratio = gaussian_log_prob(z, mu, logvar) - StandardNormal().log_prob(z)  # (n, 3)
    mc, se = log_ratio.mean(0), log_ratio.std(0) / n**0.5
    closed = StandardNormal().kl_gaussian(mu, logvar)
    assert torch.all((mc - closed).abs() < 4 * se), (mc, closed, se)
    assert torch.all(closed >= 0)


def _encoder(n_items=7, latent=3):
    torch.manual_seed(0)
    return GaussianEncoder(n_items, hidden_dims=[5], latent_dim=latent, dropout=0.5).double().eval()


def test_pseudo_inputs_are_dense_clipped_and_initialised_near_the_mean():
    prior = VampPrior(n_items=7, encoder=_encoder(), n_components=4).double()
    u = prior.pseudo_inputs().detach()
    assert u.shape == (4, 7) and u.layout == torch.strided
    assert torch.all((u >= 0) & (u <= 1))
    assert abs(float(u.mean()) - 0.05) < 0.01
    prior.means.weight.data[0, 0], prior.means.weight.data[1, 1] = 3.0, -2.0
    u = prior.pseudo_inputs()
    assert u[0, 0] == 1.0 and u[1, 1] == 0.0


def test_vamp_log_prob_is_the_mixture_of_the_encoders_gaussians():
    encoder = _encoder()
    prior = VampPrior(n_items=7, encoder=encoder, n_components=4).double()
    with torch.no_grad():
        prior.means.weight.uniform_(-0.2, 1.2)  # spread the components apart
        mu, logvar, _ = encoder.gaussian(prior.pseudo_inputs())
        z = torch.randn(5, 3, dtype=torch.float64) + mu[:1]
        got = prior.log_prob(z).numpy()
    gaussians = [scipy.stats.multivariate_normal(m, np.diag(np.exp(lv))) for m, lv in zip(mu.numpy(), logvar.numpy())]
    components = np.stack([g.logpdf(z.numpy()) for g in gaussians], axis=1)
    np.testing.assert_allclose(got, logsumexp(components, axis=1) - np.log(4), rtol=1e-10)


def test_vamp_shares_the_encoder_without_owning_its_parameters():
    encoder = _encoder()
    prior = VampPrior(n_items=7, encoder=encoder, n_components=2).double()
    assert [name for name, _ in prior.named_parameters()] == ["means.weight"]
    assert not hasattr(prior, "kl_gaussian")  # the VAE falls back to the Monte Carlo KL
    prior.log_prob(torch.randn(3, 3, dtype=torch.float64)).sum().backward()
    assert prior.means.weight.grad.abs().sum() > 0
    assert encoder.head.weight.grad.abs().sum() > 0


def test_control_prior_mixes_a_fixed_standard_normal_into_the_vamp_mixture():
    encoder = _encoder()
    vamp = VampPrior(n_items=7, encoder=encoder, n_components=4).double()
    control = VampPrior(n_items=7, encoder=encoder, n_components=4, standard_weight=0.3).double()
    control.load_state_dict(vamp.state_dict())
    with torch.no_grad():
        z = torch.randn(5, 3, dtype=torch.float64)
        vamp_density = np.exp(vamp.log_prob(z).numpy())
        got = control.log_prob(z).numpy()
    standard = scipy.stats.norm.pdf(z.numpy()).prod(1)
    np.testing.assert_allclose(got, np.log(0.3 * standard + 0.7 * vamp_density), rtol=1e-10)
    with pytest.raises(ValueError, match="standard_weight"):
        VampPrior(n_items=7, encoder=encoder, standard_weight=1.0)
