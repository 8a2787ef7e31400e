"""Decoder likelihoods log p(x | η) per user, for logits η (B, I) and rows x (B, I), sparse or dense.

x may hold counts; only its non-zeros are touched, so a sparse batch is never densified. Each term
drops what does not depend on η (the multinomial coefficient, the Gaussian normaliser), as Liang et al.
(2018) do: the values are log-likelihoods up to a per-user constant.

Logits may come in a lower precision (bf16 from an autocast decoder); every term is computed in at least
float32 (float64 logits stay float64), so a caller need not upcast the whole (B, I) matrix first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

#: elements of logits processed at a time on CPU by the multinomial (a block of rows that stays in cache)
CPU_BLOCK = 1 << 18


def _coordinates(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(row, col, value) of each non-zero of x (sparse CSR or dense), ordered by row."""
    if x.layout == torch.strided:
        row, col = x.nonzero(as_tuple=True)
        return row, col, x[row, col]
    crow, col = x.crow_indices(), x.col_indices()
    # output_size: known on the host, so a GPU need not sync to size the result
    row = torch.repeat_interleave(torch.arange(x.shape[0], device=x.device), crow[1:] - crow[:-1],
                                  output_size=col.numel())
    return row, col, x.values()


def nonzeros(x: torch.Tensor, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(row, x value, η) at each non-zero of x, for a sparse CSR or dense x (in at least float32)."""
    row, col, values = _coordinates(x)
    ct = _compute_dtype(logits)
    return row, values.to(ct), logits[row, col].to(ct)


def row_sum(row: torch.Tensor, terms: torch.Tensor, n_rows: int) -> torch.Tensor:
    """Σ of `terms` per row index (B,)."""
    return terms.new_zeros(n_rows).index_add(0, row, terms)


def _compute_dtype(logits: torch.Tensor) -> torch.dtype:
    return torch.promote_types(logits.dtype, torch.float32)


def _blocks(n: int, width: int, device: torch.device) -> list[tuple[int, int]]:
    """Ranges over n rows of `width` elements: about CPU_BLOCK elements each on CPU (cache-sized), all rows
    at once on an accelerator."""
    step = max(1, CPU_BLOCK // max(width, 1)) if device.type == "cpu" else max(n, 1)
    return [(a, min(a + step, n)) for a in range(0, n, step)]


class _MultinomialLogProb(torch.autograd.Function):
    """Σ_i x_i η_i − N_u logsumexp(η) per user, with the (B, I) work done block by block.

    Forward keeps only the logits (in their own dtype) and logsumexp per user; backward writes
    ∂/∂η = g_u (x − N_u softmax(η)) block by block straight into a gradient of the logits' dtype and
    layout. The plain autograd graph makes a dozen full passes over (B, I) float32 temporaries (upcast,
    max, shift, exp, sum; zero-filled scatter, shift, exp, scale, add, downcast); this makes three or four.

    Logits may be user-major (B × I contiguous, blocks of users) or item-major (their transpose
    contiguous, as the VAE's bf16 CPU decoder gives them; blocks of items, the max taken first).
    """

    @staticmethod
    def forward(ctx, logits, row, col, values):
        ct = _compute_dtype(logits)
        n_users = logits.shape[0]
        item_major = logits.dim() == 2 and not logits.is_contiguous() and logits.t().is_contiguous()
        m = logits.t() if item_major else logits  # contiguous; blocks along its first dim
        blocks = _blocks(m.shape[0], m.shape[1], m.device)
        if item_major:  # running (max, Σ exp(η − max)) per user over blocks of items: one pass over η
            top = torch.full((n_users,), -math.inf, dtype=ct, device=m.device)
            total = torch.zeros(n_users, dtype=ct, device=m.device)
            for a, b in blocks:
                block = m[a:b].to(ct, copy=True)  # modified in place below
                new_top = torch.maximum(top, block.amax(0))
                total = total * (top - new_top).exp_() + block.sub_(new_top).exp_().sum(0)
                top = new_top
            lse = top + total.log()
        else:
            lse = torch.empty(n_users, dtype=ct, device=m.device)
            for a, b in blocks:
                lse[a:b] = torch.logsumexp(m[a:b].to(ct), dim=1)
        values = values.to(ct)
        n_u = row_sum(row, values, n_users)
        out = row_sum(row, values * logits[row, col].to(ct), n_users) - n_u * lse
        ctx.save_for_backward(logits, lse, n_u, row, col, values)
        ctx.blocks, ctx.item_major = blocks, item_major
        return out

    @staticmethod
    def backward(ctx, grad_out):
        logits, lse, n_u, row, col, values = ctx.saved_tensors
        grad_out = grad_out.to(lse.dtype)
        scale = -(grad_out * n_u)
        weights = grad_out[row] * values  # ∂/∂η at x's non-zeros: g_u x_ui
        if ctx.item_major:  # blocks of items: the non-zeros by item, users along the second dim
            m, order = logits.t(), torch.argsort(col, stable=True)
            first, second, weights = col[order], row[order], weights[order]
            lse, scale = lse[None, :], scale[None, :]
        else:
            m, first, second = logits, row, col
            lse, scale = lse[:, None], scale[:, None]
        grad = torch.empty_like(m, memory_format=torch.contiguous_format)
        if len(ctx.blocks) == 1:  # one block (always on a GPU): no search, no device-to-host sync
            starts = [0, first.numel()]
        else:
            bounds = torch.tensor([a for a, _ in ctx.blocks] + [m.shape[0]], device=first.device)
            starts = torch.searchsorted(first, bounds).tolist()
        for (a, b), lo, hi in zip(ctx.blocks, starts[:-1], starts[1:]):
            block_lse = lse if ctx.item_major else lse[a:b]
            block_scale = scale if ctx.item_major else scale[a:b]
            block = (m[a:b].to(grad_out.dtype) - block_lse).exp_().mul_(block_scale)
            block.index_put_((first[lo:hi] - a, second[lo:hi]), weights[lo:hi], accumulate=True)
            grad[a:b] = block
        return (grad.t() if ctx.item_major else grad), None, None, None


@dataclass
class Multinomial:
    """Mult-VAE's likelihood (Eq. 8): Σ_i x_i log softmax(η)_i = Σ_i x_i η_i − N_u log Σ_i' exp η_i'."""

    def log_prob(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        row, col, values = _coordinates(x)
        return _MultinomialLogProb.apply(logits, row, col, values)


@dataclass
class Logistic:
    """Bernoulli-logistic likelihood (Eq. 10): Σ_i x_i η_i − log(1 + exp η_i), summed over all items."""

    def log_prob(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        row, values, eta = nonzeros(x, logits)
        return row_sum(row, values * eta, x.shape[0]) - F.softplus(logits.to(eta.dtype)).sum(1)


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
        return -0.5 * (self.c0 * logits.to(eta.dtype).pow(2).sum(1) + observed)
