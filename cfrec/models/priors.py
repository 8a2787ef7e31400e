"""Priors p(z): the standard normal of Mult-VAE and the VampPrior (Tomczak & Welling 2018) of VAE+Vamp.

Both are built as `prior(n_items=..., encoder=...)` (a Hydra partial); `log_prob(z) -> (B,)`. Only the
standard normal has `kl_gaussian`, so with a VampPrior the VAE uses the Monte Carlo KL.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cfrec.models.encoders import gaussian_log_prob


class StandardNormal(nn.Module):
    """p(z) = N(0, I), with the closed-form KL to a diagonal Gaussian."""

    def __init__(self, **_: object) -> None:
        super().__init__()

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return -0.5 * (math.log(2 * math.pi) + z**2).sum(-1)

    def kl_gaussian(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(N(mu, e^logvar) || N(0, I)) per user = ½ Σ (e^logvar + mu² − 1 − logvar)."""
        return 0.5 * (torch.exp(logvar) + mu**2 - 1.0 - logvar).sum(-1)


class VampPrior(nn.Module):
    """p(z) = (1/C) Σ_c q(z | u_c): the shared encoder's Gaussians at C learned pseudo-inputs (paper: C = M = 5).

    u = hardtanh_[0,1](W · I_C), W (I × C) initialised N(init_mean, init_std²) as jmtomczak/vae_vampprior.
    The pseudo-inputs go through the encoder's own `gaussian` (its L2 normalisation and, in training,
    its input dropout, as psywaves/EVCF does). `standard_weight` w > 0 mixes in a fixed N(0, I) component,
    p(z) = w·N(0, I) + (1 − w)·Vamp: a control for whether the standard prior's pull towards 0 is what helps.
    """

    def __init__(
        self, n_items: int, encoder: nn.Module, n_components: int = 5, init_mean: float = 0.05, init_std: float = 0.01,
        standard_weight: float = 0.0,
    ):
        super().__init__()
        if not 0.0 <= standard_weight < 1.0:
            raise ValueError(f"prior.standard_weight must be in [0, 1), got {standard_weight}")
        self.standard_weight = standard_weight
        self.means = nn.Linear(n_components, n_items, bias=False)
        nn.init.normal_(self.means.weight, init_mean, init_std)
        self.register_buffer("idle_input", torch.eye(n_components), persistent=False)
        self._encoder = (encoder,)  # shared with the VAE; a tuple keeps it out of this module's parameters

    @property
    def encoder(self) -> nn.Module:
        return self._encoder[0]

    def pseudo_inputs(self) -> torch.Tensor:
        """The C dense pseudo-inputs u_c (C × I), each entry in [0, 1]."""
        return F.hardtanh(self.means(self.idle_input), 0.0, 1.0)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        mu, logvar, _ = self.encoder.gaussian(self.pseudo_inputs())  # (C, D) each
        log_components = gaussian_log_prob(z.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0))  # (B, C)
        log_vamp = torch.logsumexp(log_components, dim=1) - math.log(mu.shape[0])
        if not self.standard_weight:
            return log_vamp
        w = self.standard_weight  # the control prior: w · N(0, I) + (1 − w) · VampPrior
        log_standard = -0.5 * (math.log(2 * math.pi) + z**2).sum(-1)
        return torch.logaddexp(math.log(w) + log_standard, math.log1p(-w) + log_vamp)
