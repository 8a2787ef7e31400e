"""Semi-implicit q(z|x) (SIVAE, §3.6): an implicit, noise-driven mean ψ and an explicit variance σ²(x).

q(z|x) = ∫ N(z; ψ, diag σ²(x)) q(ψ|x) dψ with ψ = f(ℓ_M, x), ℓ_t = T_t(ℓ_{t−1}, ε_t, x) (Eq. 12). The
marginal is intractable, so training uses the surrogate of the bound L_K (Algorithm 1): log q(z|x) is
replaced by the log of the mixture over ψ⁽⁰⁾ (the component z was drawn from) and K fresh draws
ψ⁽¹⁾..ψ⁽ᴷ⁾ of the same user.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cfrec.models.encoders import (
    Posterior,
    SparseInput,
    at_least_fp32,
    gaussian_log_prob,
    l2_normalize,
    sparse_dropout,
    xavier_init,
)

NOISE_MEANS = {"bernoulli": 0.5, "gaussian": 0.0}
EVAL_MODES = ("noise_mean", "psi_mean", "sample")
COVARIANCES = ("x", "noise")  # log σ² = g(x) as SIVI's code, or g(ℓ_M, x) as Eq. 12 writes Σ


def mixture_log_prob(z: torch.Tensor, psi: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log (1/(K+1)) Σ_k N(z; ψ⁽ᵏ⁾, diag e^logvar⁽ᵏ⁾) per user: z (B, D), psi and logvar (K+1, B, D) or logvar
    (B, D) -> (B,), by logsumexp."""
    return torch.logsumexp(gaussian_log_prob(z, psi, logvar), dim=0) - math.log(psi.shape[0])


class SemiImplicitEncoder(nn.Module):
    """SIVAE's encoder (Eq. 12): ψ from M noise layers that each also see x; log σ² = g(x) from x alone.

    x (L2-normalised, dropped out) goes once through a tanh MLP to h(x); h feeds g, and one linear map of h
    gives x's additive share of every T_t and of f (the skip connections), so the I-wide layer runs once
    per batch however many ψ are drawn. The K+1 draws of the noise path run batched along a leading dim.
    """

    def __init__(
        self,
        n_items: int,
        hidden_dims: list[int] = (600,),
        latent_dim: int = 200,
        noise_dims: list[int] = (100, 100),
        layer_dim: int = 600,
        noise: str = "bernoulli",
        extra_psi: int = 1,
        dropout: float = 0.5,
        eval_mode: str = "noise_mean",
        eval_samples: int = 16,
        covariance: str = "x",
    ):
        super().__init__()
        if covariance not in COVARIANCES:
            raise ValueError(f"covariance must be one of {COVARIANCES}, got {covariance!r}")
        if not hidden_dims or not noise_dims:
            raise ValueError("SemiImplicitEncoder needs at least one hidden layer and one noise layer")
        if noise not in NOISE_MEANS:
            raise ValueError(f"noise must be one of {sorted(NOISE_MEANS)}, got {noise!r}")
        if eval_mode not in EVAL_MODES:
            raise ValueError(f"eval_mode must be one of {EVAL_MODES}, got {eval_mode!r}")
        dims = [n_items, *hidden_dims]
        self.first = SparseInput(dims[0], dims[1])
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[1:-1], dims[2:]))
        self.logvar = nn.Linear(dims[-1], latent_dim)  # g(x)
        self.noise_dims = list(noise_dims)
        ins = [n + (layer_dim if t else 0) for t, n in enumerate(self.noise_dims)]
        self.layers = nn.ModuleList(nn.Linear(n, layer_dim) for n in ins)  # T_t's [ℓ_{t−1}, ε_t] part
        self.skip_sizes = [layer_dim] * len(self.noise_dims) + [latent_dim]
        self.skip = nn.Linear(dims[-1], sum(self.skip_sizes), bias=False)  # x's part of T_1..T_M and f
        self.out = nn.Linear(layer_dim, latent_dim)  # f's ℓ_M part
        # Eq. 12's Σ(ℓ_M, x): g's ℓ_M part, added to g(x) (None: σ² from x alone, as SIVI's code)
        self.logvar_noise = nn.Linear(layer_dim, latent_dim, bias=False) if covariance == "noise" else None
        self.latent_dim, self.hidden_dim, self.dropout = latent_dim, dims[-1], dropout
        self.noise, self.extra_psi, self.eval_mode, self.eval_samples = noise, extra_psi, eval_mode, eval_samples
        xavier_init(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """h(x): the normalised, dropped-out input through the tanh MLP (first layer kept sparse)."""
        x = sparse_dropout(l2_normalize(x), self.dropout, self.training)
        h = torch.tanh(self.first(x))
        for layer in self.hidden:
            h = torch.tanh(layer(h))
        return h

    def _noise(self, shape: tuple[int, ...], like: torch.Tensor, at_mean: bool) -> torch.Tensor:
        """ε_t ~ Bernoulli(0.5) (SIVI's choice) or N(0, 1); its mean when `at_mean`."""
        if at_mean:
            return like.new_full(shape, NOISE_MEANS[self.noise])
        if self.noise == "bernoulli":
            return torch.randint(0, 2, shape, dtype=like.dtype, device=like.device)
        return torch.randn(shape, dtype=like.dtype, device=like.device)

    def draws(self, h: torch.Tensor, n: int, at_mean: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """n draws of (ψ, log σ²) per user, each (n, B, D): ψ = f(ℓ_M, x), ℓ_t = tanh(A_t[ℓ_{t−1}, ε_t] + S_t h)
        (Eq. 12); log σ² = g(x), plus g's ℓ_M part with `covariance="noise"` (else the same for every draw)."""
        *skips, skip_f = self.skip(h).split(self.skip_sizes, dim=-1)  # computed once, broadcast over n
        ell = None
        for layer, noise_dim, skip in zip(self.layers, self.noise_dims, skips):
            eps = self._noise((n, h.shape[0], noise_dim), h, at_mean)
            ell = torch.tanh(layer(eps if ell is None else torch.cat([ell, eps], dim=-1)) + skip)
        logvar = at_least_fp32(self.logvar(h)).expand(n, -1, -1)
        if self.logvar_noise is not None:
            logvar = logvar + at_least_fp32(self.logvar_noise(ell))
        return self.out(ell) + skip_f, logvar

    def psi(self, h: torch.Tensor, n: int, at_mean: bool = False) -> torch.Tensor:
        """n draws of ψ per user, (n, B, D)."""
        return self.draws(h, n, at_mean)[0]

    @torch.no_grad()
    def psi_spread(self, x: torch.Tensor, n: int = 64) -> float:
        """How much the noise moves ψ: per user, the mean over dimensions of std(ψ over n draws) / σ, then the
        median over users. Near 0 the semi-implicit q is a plain Gaussian (docs/sivae.md)."""
        psi, logvar = self.draws(self.features(x), n)
        ratio = psi.float().std(0) / torch.exp(0.5 * logvar.float()).mean(0)
        return float(ratio.mean(-1).median())

    def diagnostics(self, fold_in: torch.Tensor) -> dict[str, float]:
        """The VAE's diagnostics hook (`cfrec.models.vae.PartHooks`): ψ's spread on a validation batch."""
        return {"psi_spread": self.psi_spread(fold_in)}

    def point(self, h: torch.Tensor) -> torch.Tensor:
        """The evaluation z: ψ at the noise mean, the mean of `eval_samples` ψ draws, or one ψ draw."""
        if self.eval_mode == "noise_mean":
            return self.psi(h, 1, at_mean=True)[0]
        return self.psi(h, self.eval_samples if self.eval_mode == "psi_mean" else 1).mean(0)

    def forward(self, x: torch.Tensor) -> Posterior:
        h = self.features(x)
        if not self.training:
            z = self.point(h)
            return Posterior(z=z, mu=z, logvar=self.draws(h, 1, at_mean=True)[1][0])
        # ψ⁽⁰⁾ and K extra draws, all differentiable (SIVI); z and log_q in ≥ fp32 under autocast (z − ψ must
        # not cancel)
        psi, logvar = self.draws(h, self.extra_psi + 1)
        psi = at_least_fp32(psi)
        z = psi[0] + torch.randn_like(psi[0]) * torch.exp(0.5 * logvar[0])  # z ~ N(ψ⁽⁰⁾, σ²), reparameterised
        return Posterior(z=z, mu=psi[0], logvar=logvar[0], log_q=mixture_log_prob(z, psi, logvar))  # L_K surrogate
