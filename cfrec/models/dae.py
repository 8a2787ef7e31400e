"""Mult-DAE (Liang et al. 2018, `MultiDAE` of dawenl/vae_cf): a denoising autoencoder with multinomial loss.

Weight decay as the notebook: it builds `MultiDAE(p_dims, lam=0.01 / batch_size)` and adds
`2 * l2_regularizer(lam)(W)` = 2 · lam · ½ Σ||W||² = lam · Σ||W||² over the weight matrices (no biases).
So `l2` here is lam = 0.01 / 500 = 2e-5 for Liang's batch of 500 users, on a loss that is the mean
over users of −log p(x|η).
"""

from __future__ import annotations

import torch
from torch import nn

from cfrec.data.batches import UserBatch
from cfrec.models.base import CFModule
from cfrec.models.encoders import SparseInput, l2_normalize, sparse_dropout, xavier_init
from cfrec.models.likelihoods import Multinomial
from cfrec.models.optim import fused_adam


class DAE(CFModule):
    """[I → 200 → I] tanh autoencoder on L2-normalised rows with input dropout; logits η over all items."""

    def __init__(
        self,
        n_items: int,
        hidden_dims: list[int] = (200,),
        dropout: float = 0.5,
        l2: float = 0.01 / 500,
        lr: float = 1e-3,
    ):
        super().__init__()
        self.save_hyperparameters()
        dims = [n_items, *hidden_dims, n_items]
        self.layers = nn.ModuleList([SparseInput(dims[0], dims[1]),
                                     *(nn.Linear(a, b) for a, b in zip(dims[1:-1], dims[2:]))])
        self.likelihood = Multinomial()
        self.dropout, self.l2, self.lr = dropout, l2, lr
        xavier_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.layers[0](sparse_dropout(l2_normalize(x), self.dropout, self.training))
        for layer in self.layers[1:]:
            h = layer(torch.tanh(h))
        return h

    def weight_penalty(self) -> torch.Tensor:
        """Σ ||W||² over the weight matrices."""
        return sum(layer.weight.pow(2).sum() for layer in self.layers)

    def losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """loss = −mean_u log p(x_u | η_u) (Eq. 8) + l2 · Σ||W||²; recon = mean log-likelihood."""
        recon = self.likelihood.log_prob(x, self(x)).mean()  # the likelihood computes in ≥ fp32 itself
        return {"loss": -recon + self.l2 * self.weight_penalty(), "recon": recon}

    def training_step(self, batch: UserBatch, batch_idx: int) -> torch.Tensor:
        terms = self.losses(batch.x)
        logs = {f"train/{k}": v for k, v in terms.items()}
        self.log_dict(logs, on_step=True, on_epoch=True, batch_size=batch.x.shape[0])
        return terms["loss"]

    @torch.no_grad()
    def score(self, fold_in: torch.Tensor) -> torch.Tensor:
        """Logits η for the fold-in rows, without dropout."""
        was_training = self.training
        scores = self.eval()(fold_in)
        self.train(was_training)
        return scores

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return fused_adam(self.parameters(), lr=self.lr)
