"""Decoder likelihoods log p(x | η) per user, for logits η (B, I) and rows x (B, I), sparse or dense.

x may hold counts; only its non-zeros are touched, so a sparse batch is never densified. Each term
drops what does not depend on η (the multinomial coefficient, the Gaussian normaliser), as Liang et al.
(2018) do: the values are log-likelihoods up to a per-user constant.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def nonzeros(x: torch.Tensor, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(row, x value, η) at each non-zero of x, for a sparse CSR or dense x."""
    if x.layout == torch.strided:
        row, col = x.nonzero(as_tuple=True)
        values = x[row, col]
    else:
        crow = x.crow_indices()
        row = torch.repeat_interleave(torch.arange(x.shape[0], device=x.device), crow[1:] - crow[:-1])
        col, values = x.col_indices(), x.values()
    return row, values.to(logits.dtype), logits[row, col]


def row_sum(row: torch.Tensor, terms: torch.Tensor, n_rows: int) -> torch.Tensor:
    """Σ of `terms` per row index (B,)."""
    return terms.new_zeros(n_rows).index_add(0, row, terms)


@dataclass
class Multinomial:
    """Mult-VAE's likelihood (Eq. 8): Σ_i x_i log softmax(η)_i = Σ_i x_i η_i − N_u log Σ_i' exp η_i'."""

    def log_prob(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        row, values, eta = nonzeros(x, logits)
        n_u = row_sum(row, values, x.shape[0])
        return row_sum(row, values * eta, x.shape[0]) - n_u * torch.logsumexp(logits, dim=1)


@dataclass
class Logistic:
    """Bernoulli-logistic likelihood (Eq. 10): Σ_i x_i η_i − log(1 + exp η_i), summed over all items."""

    def log_prob(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        row, values, eta = nonzeros(x, logits)
        return row_sum(row, values * eta, x.shape[0]) - F.softplus(logits).sum(1)


@dataclass
class Gaussian:
    """Liang et al.'s Gaussian likelihood: −½ Σ_i c_i (x_i − η_i)², c_i = c1 where x_i > 0 and c0 elsewhere.

    The confidence weights (Hu et al. 2008) let the few clicks outweigh the many zeros (c1 > c0);
    the defaults are ours (ratio 100): Liang et al. tune them. The dropped constant is
    Σ_i ½ (log c_i − log 2π), which depends on x but not on η.
    """

    c1: float = 1.0
    c0: float = 0.01

    def log_prob(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        # Σ_i c_i (x_i − η_i)² = c0 Σ_i η_i² + Σ_{x_i > 0} [c1 (x_i − η_i)² − c0 η_i²]
        row, values, eta = nonzeros(x, logits)
        c = torch.where(values > 0, self.c1, self.c0)  # a stored zero contributes nothing
        observed = row_sum(row, c * (values - eta) ** 2 - self.c0 * eta**2, x.shape[0])
        return -0.5 * (self.c0 * logits.pow(2).sum(1) + observed)
