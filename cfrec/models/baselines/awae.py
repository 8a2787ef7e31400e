"""aWAE (Zhang, Zhong & Liu 2021): a Wasserstein autoencoder adapted to collaborative filtering.

A deterministic encoder maps a user's row to a code z; the loss is the multinomial reconstruction
error + λ·MMD(q(z), p(z)) (WAE-MMD, Tolstikhin et al. 2018, p = N(0, I)) + γ·‖z‖₁ (sparse codes).
Only the paper's abstract was reachable: the assumptions are listed in docs/neural_baselines.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cfrec.data.batches import UserBatch
from cfrec.models.base import CFModule
from cfrec.models.encoders import SparseInput, l2_normalize, sparse_dropout, xavier_init
from cfrec.models.likelihoods import Multinomial
from cfrec.models.optim import fused_adam

#: multiples of the base IMQ constant C = 2·d·σ² summed over, as in the WAE authors' MMD penalty
IMQ_SCALES: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def imq_mmd(z: torch.Tensor, z_prior: torch.Tensor, scales: Sequence[float] = IMQ_SCALES) -> torch.Tensor:
    """Unbiased MMD² of equal-size samples under Σ_s C_s / (C_s + ‖a − b‖²), C_s = 2·d·s (0 below 2 rows)."""
    n, d = z.shape
    if n < 2:
        return z.new_zeros(())
    both = torch.cat([z, z_prior])
    sq = (both**2).sum(-1)
    dist2 = (sq[:, None] + sq[None, :] - 2.0 * both @ both.t()).clamp_min(0.0)
    k = sum(2.0 * d * s / (2.0 * d * s + dist2) for s in scales)
    off_diag = 1.0 - torch.eye(n, device=z.device, dtype=z.dtype)
    k_zz, k_pp, k_zp = k[:n, :n], k[n:, n:], k[:n, n:]
    return ((k_zz + k_pp) * off_diag).sum() / (n * (n - 1)) - 2.0 * k_zp.mean()


def l1_sparsity(z: torch.Tensor) -> torch.Tensor:
    """Mean over users of ‖z_u‖₁."""
    return z.abs().sum(-1).mean()


class AWAE(CFModule):
    """aWAE: encoder [I → 600 → latent] and decoder [latent → 600 → I] (tanh), multinomial likelihood."""

    def __init__(
        self,
        n_items: int,
        hidden_dim: int = 600,
        latent_dim: int = 200,
        dropout: float = 0.5,
        mmd_weight: float = 1.0,
        l1_weight: float = 0.01,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.enc_hidden = SparseInput(n_items, hidden_dim)
        self.enc_code = nn.Linear(hidden_dim, latent_dim)
        self.dec_hidden = nn.Linear(latent_dim, hidden_dim)
        self.dec_out = nn.Linear(hidden_dim, n_items)
        self.likelihood = Multinomial()
        xavier_init(self)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic code z (B, latent_dim) of L2-normalised rows, dropped out in training."""
        x = sparse_dropout(l2_normalize(x), self.hparams.dropout, self.training)
        return self.enc_code(torch.tanh(self.enc_hidden(x)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits over all items."""
        return self.dec_out(torch.tanh(self.dec_hidden(z)))

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Unweighted terms (nll, mmd against fresh N(0, I) samples, l1) and the weighted total `loss`."""
        z = self.encode(x)
        nll = -self.likelihood.log_prob(x, self.decode(z)).mean()
        mmd = imq_mmd(z, torch.randn_like(z))
        l1 = l1_sparsity(z)
        loss = nll + self.hparams.mmd_weight * mmd + self.hparams.l1_weight * l1
        return {"loss": loss, "nll": nll, "mmd": mmd, "l1": l1}

    def training_step(self, batch: UserBatch, batch_idx: int) -> torch.Tensor:
        terms = self.loss_terms(batch.x)
        logged = {f"train/{k}": v for k, v in terms.items()}
        self.log_dict(logged, on_step=False, on_epoch=True, batch_size=batch.x.shape[0])
        return terms["loss"]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return fused_adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)

    def score(self, fold_in: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(fold_in))
