"""IAF: MADE masks are autoregressive, log|det| matches the autograd Jacobian, encoder shapes and gradients."""

import pytest
import torch
from torch.autograd.functional import jacobian

from cfrec.models.encoders import gaussian_log_prob
from cfrec.models.flows import IAFEncoder, IAFStep
from tests.conftest import posteriors_fp32_and_bf16

D, H = 4, 8


def _randomise(module: torch.nn.Module) -> None:
    """Large random weights so every allowed connection is clearly non-zero."""
    for p in module.parameters():
        torch.nn.init.normal_(p, std=0.7)


@pytest.mark.parametrize("reverse", [False, True])
def test_made_is_strictly_autoregressive_in_the_step_order(reverse: bool) -> None:
    torch.manual_seed(0)
    step = IAFStep(D, H, reverse=reverse).double()
    _randomise(step)
    ctx, z = torch.randn(H, dtype=torch.float64), torch.randn(D, dtype=torch.float64)
    for k in (0, 1):  # m and s, as functions of z in the step's own order
        j = jacobian(lambda v, k=k: step.made(v, ctx)[k], z)
        assert torch.all(j.triu() == 0)  # output d depends only on inputs before d ...
        below = torch.ones(D, D, dtype=torch.bool).tril(-1)
        assert torch.all(j[below] != 0)  # ... and on every one of them
    # the update in the caller's coordinates, permuted to the step's order: lower-triangular, diagonal = gate
    perm = torch.arange(D - 1, -1, -1) if reverse else torch.arange(D)
    jz = jacobian(lambda v: step(v[None], ctx)[0][0], z)[perm][:, perm]
    assert torch.all(jz.triu(1) == 0)
    torch.testing.assert_close(jz.diagonal(), torch.sigmoid(step.made(z[perm], ctx)[1] + 1.0))


@pytest.mark.parametrize("flows", [1, 3])
def test_log_det_matches_autograd_jacobian(flows: int) -> None:
    torch.manual_seed(1)
    enc = IAFEncoder(n_items=6, hidden_dims=[5], latent_dim=D, flows=flows, made_hidden=H).double()
    _randomise(enc.steps)
    ctx = torch.randn(1, H, dtype=torch.float64)
    z0 = torch.randn(1, D, dtype=torch.float64)
    _, logdet = enc.flow(z0, ctx)
    jac = jacobian(lambda v: enc.flow(v[None], ctx)[0][0], z0[0])
    sign, logabs = torch.linalg.slogdet(jac)
    assert sign > 0
    torch.testing.assert_close(logdet[0], logabs)


def test_hidden_size_must_be_a_multiple_of_the_latent_size() -> None:
    with pytest.raises(ValueError, match="multiple of the latent size 200"):
        IAFStep(200, 320)


def test_encoder_shapes_gradients_and_eval() -> None:
    torch.manual_seed(2)
    enc = IAFEncoder(n_items=10, hidden_dims=[6], latent_dim=D, made_hidden=H, flows=2)
    x = (torch.rand(5, 10) < 0.4).float()
    x[:, 0] = 1.0
    post = enc(x)
    assert post.z.shape == post.mu.shape == post.logvar.shape == (5, D) and post.log_q.shape == (5,)
    (post.z.sum() + post.log_q.sum()).backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    enc.eval()
    post = enc(x.to_sparse_csr())
    mu, logvar, h = enc.gaussian(x)
    z, logdet = enc.flow(mu, enc.context(h))
    torch.testing.assert_close(post.z, z)  # eval: the flow applied to z₀ = μ; sparse input = dense input
    torch.testing.assert_close(post.log_q, gaussian_log_prob(mu, mu, logvar) - logdet)


def test_log_q_stays_fp32_under_bf16_autocast() -> None:
    torch.manual_seed(3)
    enc = IAFEncoder(n_items=40, hidden_dims=[16], latent_dim=D, made_hidden=H, dropout=0.0)
    ref, post = posteriors_fp32_and_bf16(enc, seed=3)
    assert post.log_q.dtype == torch.float32
    torch.testing.assert_close(post.log_q, ref.log_q, atol=0.5, rtol=0.02)
