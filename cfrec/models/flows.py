"""Inverse autoregressive flow on Liang's Gaussian posterior (VAE+IAF, §4.5), each step a MADE.

z₀ ~ N(μ(x), σ²(x)); step t: [m, s] = MADE(z_{t−1}, h(x)), σ_t = sigmoid(s + forget_bias),
z_t = σ_t ⊙ z_{t−1} + (1 − σ_t) ⊙ m. The Jacobian is triangular, so log|det| = Σ log σ_t and
log q(z_T|x) = log N(z₀; μ, σ²) − Σ_t log|det_t| (the Monte Carlo KL of the VAE).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cfrec.models.encoders import GaussianEncoder, Posterior, at_least_fp32


def made_mask(in_degrees: torch.Tensor, out_degrees: torch.Tensor, strict: bool) -> torch.Tensor:
    """(out, in) 0/1 mask: unit j sees unit i iff degree_j ≥ degree_i (> when `strict`)."""
    later = out_degrees[:, None] > in_degrees[None, :] if strict else out_degrees[:, None] >= in_degrees[None, :]
    return later.float()


class MaskedLinear(nn.Linear):
    """Linear layer whose weight is multiplied by a fixed connectivity mask."""

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor):
        super().__init__(in_features, out_features)
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class IAFStep(nn.Module):
    """One IAF step (§4.5): MADE h = ELU(W₁z) + context, h = ELU(W₂h); m, s strictly autoregressive in z.

    With `reverse` the autoregressive order is z_D, ..., z_1 (the step works on the flipped vector).
    """

    def __init__(self, latent_dim: int, hidden_dim: int, reverse: bool = False, forget_bias: float = 1.0):
        super().__init__()
        if hidden_dim % latent_dim:
            raise ValueError(
                f"MADE hidden size {hidden_dim} must be a multiple of the latent size {latent_dim} "
                f"(e.g. {2 * latent_dim})"
            )
        d_in = torch.arange(latent_dim)
        d_hid = torch.arange(hidden_dim) // (hidden_dim // latent_dim)  # each input degree gets hidden/latent units
        self.inp = MaskedLinear(latent_dim, hidden_dim, made_mask(d_in, d_hid, strict=False))
        self.hid = MaskedLinear(hidden_dim, hidden_dim, made_mask(d_hid, d_hid, strict=False))
        self.m = MaskedLinear(hidden_dim, latent_dim, made_mask(d_hid, d_in, strict=True))
        self.s = MaskedLinear(hidden_dim, latent_dim, made_mask(d_hid, d_in, strict=True))
        self.reverse, self.forget_bias = reverse, forget_bias

    def made(self, z: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(m, s) for z given in the step's own order: output d depends on z_1..z_{d−1} only."""
        h = F.elu(self.inp(z)) + context
        h = F.elu(self.hid(h))
        return self.m(h), self.s(h)

    def forward(self, z: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z_t, log|det ∂z_t/∂z_{t−1}|) with the gated update of §4.5."""
        zo = z.flip(-1) if self.reverse else z
        m, s = self.made(zo, context)
        gate = torch.sigmoid(s + self.forget_bias)
        zo = gate * zo + (1 - gate) * m
        return (zo.flip(-1) if self.reverse else zo), F.logsigmoid(at_least_fp32(s) + self.forget_bias).sum(-1)


class IAFEncoder(GaussianEncoder):
    """Mult-VAE's Gaussian encoder followed by T IAF steps conditioned on its last hidden layer (§4.5)."""

    def __init__(
        self,
        n_items: int,
        hidden_dims: list[int] = (600,),
        latent_dim: int = 200,
        dropout: float = 0.5,
        flows: int = 1,
        made_hidden: int = 400,
        forget_bias: float = 1.0,
    ):
        super().__init__(n_items, hidden_dims, latent_dim, dropout)
        self.context = nn.Linear(self.hidden_dim, made_hidden)  # shared by all steps, as sylvester-flows
        self.steps = nn.ModuleList(
            IAFStep(latent_dim, made_hidden, reverse=t % 2 == 1, forget_bias=forget_bias) for t in range(flows)
        )

    def flow(self, z: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z_T and Σ_t log|det_t| for z₀ = z."""
        logdet = at_least_fp32(z.new_zeros(z.shape[:-1]))
        for step in self.steps:
            z, ld = step(z, context)
            logdet = logdet + ld
        return z, logdet

    def forward(self, x: torch.Tensor) -> Posterior:
        mu, logvar, h = self.gaussian(x)
        mu, logvar = at_least_fp32(mu), at_least_fp32(logvar)  # z and log_q in ≥ fp32 under autocast
        eps = torch.randn_like(mu) if self.training else torch.zeros_like(mu)  # eval: z₀ = μ
        z, logdet = self.flow(mu + eps * torch.exp(0.5 * logvar), self.context(h))
        log_q0 = -0.5 * (math.log(2 * math.pi) + logvar + eps**2).sum(-1)  # log N(z₀; μ, σ²), no z₀ − μ cancellation
        return Posterior(z=z, mu=mu, logvar=logvar, log_q=log_q0 - logdet)
