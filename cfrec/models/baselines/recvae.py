"""RecVAE (Shenbin et al., WSDM'20), following the authors' code (ilya-shenbin/RecVAE, master).

Dense-residual swish + LayerNorm encoder, linear decoder, a composite prior that mixes N(0, I), the
previous encoder's posterior and a wide Gaussian, a KL weight β_u = γ·|x_u| per user, and alternating
updates. One Lightning epoch is one RecVAE epoch: `enc_passes` encoder-only passes over the training
loader (run from `on_train_epoch_start`), a prior refresh, then Lightning's own pass updates the decoder.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from cfrec.data.batches import UserBatch
from cfrec.data.sparse import densify
from cfrec.models.base import CFModule
from cfrec.models.encoders import SparseInput, l2_normalize, sparse_dropout
from cfrec.models.likelihoods import Multinomial
from cfrec.models.optim import fused_adam

MIXTURE_WEIGHTS: tuple[float, float, float] = (3 / 20, 3 / 4, 1 / 10)  # N(0, I), q_old(z|x), N(0, e^10 I)
WIDE_LOGVAR = 10.0


def log_normal(z: torch.Tensor, mu: torch.Tensor | float, logvar: torch.Tensor | float) -> torch.Tensor:
    """Element-wise log N(z; mu, e^logvar) (no sum over dimensions)."""
    logvar = torch.as_tensor(logvar, dtype=z.dtype, device=z.device)
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu) ** 2 * torch.exp(-logvar))


class RecVAEEncoder(nn.Module):
    """q(z|x): L2-normalised, dropped-out row → `n_layers` swish+LayerNorm layers, each fed all earlier ones."""

    def __init__(
        self, n_items: int, hidden_dim: int = 600, latent_dim: int = 200, n_layers: int = 5, ln_eps: float = 0.1
    ):
        super().__init__()
        self.layers = nn.ModuleList(SparseInput(n_items, hidden_dim) if i == 0 else nn.Linear(hidden_dim, hidden_dim)
                                    for i in range(n_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_dim, eps=ln_eps) for _ in range(n_layers))
        self.mu = nn.Linear(hidden_dim, latent_dim)
        self.logvar = nn.Linear(hidden_dim, latent_dim)

    def forward(self, x: torch.Tensor, dropout: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z|x); `dropout` is the input dropout rate (0 at evaluation)."""
        x = sparse_dropout(l2_normalize(x), dropout, dropout > 0)
        h = self.norms[0](F.silu(self.layers[0](x)))
        total = h
        for layer, norm in zip(self.layers[1:], self.norms[1:]):
            h = norm(F.silu(layer(h) + total))
            total = total + h
        return self.mu(h), self.logvar(h)


class CompositePrior(nn.Module):
    """p(z|x) = Π_d [w₁ N(z_d; 0, 1) + w₂ q_old(z_d|x) + w₃ N(z_d; 0, e^10)], q_old a frozen encoder copy."""

    def __init__(self, encoder: RecVAEEncoder, weights: tuple[float, float, float] = MIXTURE_WEIGHTS):
        super().__init__()
        self.old_encoder = copy.deepcopy(encoder).requires_grad_(False)
        self.log_weights = tuple(math.log(w) for w in weights)

    def refresh(self, encoder: RecVAEEncoder) -> None:
        """Copy the current encoder into q_old (after each encoder phase)."""
        self.old_encoder.load_state_dict(encoder.state_dict())

    def log_prob(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-coordinate log p(z_d|x) (B, D); sum over the last axis for log p(z|x)."""
        with torch.no_grad():
            mu_old, logvar_old = self.old_encoder(x, dropout=0.0)
        parts = (log_normal(z, 0.0, 0.0), log_normal(z, mu_old, logvar_old), log_normal(z, 0.0, WIDE_LOGVAR))
        return torch.logsumexp(torch.stack([p + w for p, w in zip(parts, self.log_weights)], -1), -1)


class RecVAE(CFModule):
    """RecVAE with the authors' training schedule; two Adam optimisers (encoder, decoder), manual optimisation."""

    def __init__(
        self,
        n_items: int,
        hidden_dim: int = 600,
        latent_dim: int = 200,
        gamma: float = 0.005,
        dropout: float = 0.5,
        enc_passes: int = 3,
        lr: float = 5e-4,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.encoder = RecVAEEncoder(n_items, hidden_dim, latent_dim)
        self.prior = CompositePrior(self.encoder)
        self.decoder = nn.Linear(latent_dim, n_items)
        self.likelihood = Multinomial()

    def kl_weight(self, x: torch.Tensor) -> torch.Tensor:
        """User-specific β_u = γ·|x_u| (B,)."""
        return self.hparams.gamma * densify(x).sum(-1)

    def encoder_loss(self, x: torch.Tensor) -> torch.Tensor:
        """−mean_u[log p(x|z) − β_u (log q(z|x) − log p(z|x))] at one reparameterised z per user."""
        mu, logvar = self.encoder(x, self.hparams.dropout)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        mll = self.likelihood.log_prob(x, self.decoder(z))
        kl = (log_normal(z, mu, logvar) - self.prior.log_prob(z, x)).sum(-1)
        return -(mll - self.kl_weight(x) * kl).mean()

    def decoder_loss(self, x: torch.Tensor) -> torch.Tensor:
        """Multinomial NLL of z ~ q(z|x) without input dropout (the KL term has no decoder gradient)."""
        with torch.no_grad():
            mu, logvar = self.encoder(x, 0.0)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return -self.likelihood.log_prob(x, self.decoder(z)).mean()

    def on_train_epoch_start(self) -> None:
        loader = self.trainer.train_dataloader
        if getattr(loader, "persistent_workers", False):
            raise ValueError("RecVAE re-iterates the training loader each epoch: set persistent_workers=False")
        enc_opt, _ = self.optimizers()
        total, steps = torch.zeros((), device=self.device), 0
        self.decoder.requires_grad_(False)
        try:
            for _ in range(self.hparams.enc_passes):
                for batch in loader:
                    x = self.trainer.strategy.batch_to_device(batch).x
                    with self.trainer.precision_plugin.forward_context():
                        loss = self.encoder_loss(x)
                    enc_opt.zero_grad()
                    self.manual_backward(loss)
                    enc_opt.step()
                    total, steps = total + loss.detach(), steps + 1
        finally:
            self.decoder.requires_grad_(True)
        self.prior.refresh(self.encoder)
        if steps:
            self.log("train/encoder_loss", total / steps, on_step=False, on_epoch=True)

    def training_step(self, batch: UserBatch, batch_idx: int) -> None:
        _, dec_opt = self.optimizers()
        loss = self.decoder_loss(batch.x)
        dec_opt.zero_grad()
        self.manual_backward(loss)
        dec_opt.step()
        self.log("train/decoder_loss", loss, on_step=False, on_epoch=True, batch_size=batch.x.shape[0])

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [
            fused_adam(self.encoder.parameters(), lr=self.hparams.lr),
            fused_adam(self.decoder.parameters(), lr=self.hparams.lr),
        ]

    def score(self, fold_in: torch.Tensor) -> torch.Tensor:
        mu, _ = self.encoder(fold_in, 0.0)
        return self.decoder(mu)
