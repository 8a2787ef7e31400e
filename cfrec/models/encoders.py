"""Amortised posteriors q(z|x): Liang's Gaussian encoder and the contract every encoder follows.

An encoder maps a batch of user rows to a `Posterior`: the z fed to the decoder (a reparameterised
sample in training, the mean at evaluation) and what the divergence term needs. `divergence` gives
the per-user KL(q||p) — in closed form where it exists, otherwise the Monte Carlo estimate
log q(z|x) - log p(z) at the sampled z.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cfrec.data.sparse import densify


@dataclass
class Posterior:
    """q(z|x) for a batch: z (B, D) plus the Gaussian parameters and, when needed, log q(z|x) (B,)."""

    z: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    log_q: torch.Tensor | None = None  # Monte Carlo log q(z|x); None when q is the Gaussian (mu, logvar)


def at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    """t in float32 when it is half/bfloat16 (log-densities summed over D lose nats in bf16), else unchanged."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def gaussian_log_prob(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)) summed over the last dimension."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu) ** 2 * torch.exp(-logvar)).sum(-1)


class SparseInput(nn.Linear):
    """An I-wide first layer, x @ Wᵀ + b, that reads a sparse batch of user rows without densifying it.

    A sparse CSR batch goes through `embedding_bag` (the rows of Wᵀ at the batch's items, weighted by
    x's values, summed per user): its forward and backward only touch the non-zeros, where
    `torch.sparse.mm` spends most of a step transposing the I × H weight and its gradient. The weight
    (H × I, named and shaped as nn.Linear's, so checkpoints of either load into the other) is stored
    item-major, Wᵀ contiguous: the sparse path reads and writes per-item rows of H contiguous floats and
    never copies the I × H matrix (`cfrec.models.optim.FusedAdam` steps it through that transpose); dense
    products are as fast either way (BLAS takes both layouts). The sparse paths run in fp32 outside
    autocast (sparse kernels lack bf16 on CPU).
    """

    def __init__(self, n_items: int, out_features: int, bias: bool = True):
        super().__init__(n_items, out_features, bias)
        self.weight = nn.Parameter(self.weight.detach().t().contiguous().t())  # same values, item-major

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.layout == torch.strided:
            return super().forward(x)
        with torch.autocast(x.device.type, enabled=False):
            if x.layout != torch.sparse_csr:
                return torch.sparse.mm(x, self.weight.t()) + self.bias
            weight_t = self.weight.t()  # (I, H), contiguous
            crow, col = x.crow_indices(), x.col_indices()
            h = F.embedding_bag(col, weight_t.contiguous(), crow.to(col.dtype), mode="sum",
                                per_sample_weights=x.values().to(weight_t.dtype), include_last_offset=True)
            return h if self.bias is None else h + self.bias


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm (Liang's input normalisation); keeps a sparse batch sparse."""
    if x.layout == torch.strided:
        return F.normalize(x, dim=1)
    crow, values = x.crow_indices(), x.values()
    counts = crow[1:] - crow[:-1]
    row_of_value = torch.repeat_interleave(torch.arange(x.shape[0], device=x.device), counts,
                                           output_size=values.numel())  # no GPU sync to size it
    norms = torch.zeros(x.shape[0], device=x.device, dtype=values.dtype).index_add_(0, row_of_value, values**2)
    scaled = values / norms.sqrt().clamp_min(1e-12)[row_of_value]
    return torch.sparse_csr_tensor(crow, x.col_indices(), scaled, size=x.shape, check_invariants=False)


def sparse_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout on the non-zeros only (zeros stay zero, so the result equals dense dropout)."""
    if not training or p == 0.0:
        return x
    if x.layout == torch.strided:
        return F.dropout(x, p, training=True)
    values = F.dropout(x.values(), p, training=True)
    return torch.sparse_csr_tensor(x.crow_indices(), x.col_indices(), values, size=x.shape, check_invariants=False)


def xavier_init(module: nn.Module) -> None:
    """Liang's initialisation: Glorot-uniform weights, biases N(0, 0.001²); each weight drawn row-major and
    copied in, so an item-major `SparseInput` gets the values an nn.Linear would."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            with torch.no_grad():
                m.weight.copy_(nn.init.xavier_uniform_(torch.empty(m.weight.shape, dtype=m.weight.dtype,
                                                                   device=m.weight.device)))
            if m.bias is not None:
                nn.init.normal_(m.bias, std=0.001)


class GaussianEncoder(nn.Module):
    """Mult-VAE's q(z|x) = N(mu(x), diag σ²(x)) (Eq. 3): L2-normalised input, dropout, tanh MLP."""

    def __init__(self, n_items: int, hidden_dims: list[int] = (600,), latent_dim: int = 200, dropout: float = 0.5):
        super().__init__()
        dims = [n_items, *hidden_dims]
        self.first = SparseInput(dims[0], dims[1]) if hidden_dims else None
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[1:-1], dims[2:]))
        last = dims[-1]
        self.head = nn.Linear(last, 2 * latent_dim) if hidden_dims else SparseInput(n_items, 2 * latent_dim)
        self.latent_dim, self.dropout, self.hidden_dim = latent_dim, dropout, last
        xavier_init(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer h(x) (normalised, dropped-out input through the tanh MLP)."""
        x = sparse_dropout(l2_normalize(x), self.dropout, self.training)
        if self.first is None:
            return densify(x)
        h = torch.tanh(self.first(x))
        for layer in self.hidden:
            h = torch.tanh(layer(h))
        return h

    def gaussian(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mu, logvar, h) of q(z|x)."""
        h = self.features(x)
        out = self.head(h)
        mu, logvar = out.chunk(2, dim=-1)
        return mu, logvar, h

    def forward(self, x: torch.Tensor) -> Posterior:
        mu, logvar, _ = self.gaussian(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return Posterior(z=z, mu=mu, logvar=logvar)
