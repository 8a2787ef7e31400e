"""CDAE (Wu et al., WSDM'16): a denoising autoencoder whose hidden layer also receives a per-user vector.

h = σ(W·x̃ + V_u + b), logits = W'·h + b', x̃ the dropout-corrupted row. Training users' vectors V_u are
an embedding table sized from the training matrix; held-out users are new users, so `score` first fits
their vectors on the fold-in rows with the network frozen (the extra optimisation the ICTIR paper notes).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cfrec.data.batches import UserBatch
from cfrec.data.sparse import densify
from cfrec.models.base import CFModule
from cfrec.models.encoders import SparseInput, sparse_dropout, xavier_init
from cfrec.models.likelihoods import Logistic, Multinomial
from cfrec.models.optim import fused_adam

LOSSES = ("logistic", "multinomial")


class CDAE(CFModule):
    """Collaborative denoising autoencoder [I → latent_dim (+V_u) → I] with Adam and L2 weight decay.

    `n_users` sizes the user table; when None it is read in `setup` from the datamodule's
    `split.train.shape[0]` (or from the checkpoint when reloading).
    """

    def __init__(
        self,
        n_items: int,
        latent_dim: int = 200,
        corruption: float = 0.5,
        loss: str = "logistic",
        lr: float = 1e-2,
        weight_decay: float = 1e-5,
        n_users: int | None = None,
        foldin_steps: int = 50,
        foldin_lr: float = 0.1,
    ):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.save_hyperparameters()
        self.encoder = SparseInput(n_items, latent_dim)
        self.decoder = nn.Linear(latent_dim, n_items)
        self.likelihood = Logistic() if loss == "logistic" else Multinomial()
        xavier_init(self)
        self.user_vectors: nn.Embedding | None = None
        if n_users is not None:
            self._build_user_vectors(n_users)

    def _build_user_vectors(self, n_users: int) -> None:
        """Create the (n_users, latent_dim) table of training users' vectors, initialised at zero."""
        self.user_vectors = nn.Embedding(n_users, self.hparams.latent_dim, device=self.device)
        nn.init.zeros_(self.user_vectors.weight)

    def setup(self, stage: str) -> None:
        if self.user_vectors is None and stage == "fit":
            self._build_user_vectors(self.trainer.datamodule.split.train.shape[0])

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.user_vectors is None:
            self._build_user_vectors(checkpoint["state_dict"]["user_vectors.weight"].shape[0])

    def objective(self, logits: torch.Tensor, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Per-user reconstruction loss plus the L2 penalty (weight_decay/2)·‖V_u‖² on the user vectors."""
        return -self.likelihood.log_prob(x, logits) + 0.5 * self.hparams.weight_decay * (v**2).sum(-1)

    def training_step(self, batch: UserBatch, batch_idx: int) -> torch.Tensor:
        x, users = batch
        v = self.user_vectors(users)
        h = torch.sigmoid(self.encoder(sparse_dropout(x, self.hparams.corruption, True)) + v)
        loss = self.objective(self.decoder(h), x, v).mean()
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=x.shape[0])
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # the user table is penalised in `objective` only for the users of each batch (Adam's coupled
        # weight decay on the whole table would move every row at every step)
        net = [p for name, p in self.named_parameters() if not name.startswith("user_vectors")]
        return fused_adam(
            [
                {"params": net, "weight_decay": self.hparams.weight_decay},
                {"params": self.user_vectors.parameters(), "weight_decay": 0.0},
            ],
            lr=self.hparams.lr,
        )

    def fold_in(self, x: torch.Tensor) -> torch.Tensor:
        """New users' vectors (B, latent_dim): `foldin_steps` Adam steps on `objective` from V = 0, network frozen."""
        with torch.inference_mode(False), torch.enable_grad():
            x = densify(x.clone())  # a plain tensor even when the batch was made under inference mode
            with torch.no_grad():
                pre = self.encoder(x)
            v = torch.zeros(x.shape[0], self.hparams.latent_dim, device=x.device, requires_grad=True)
            opt = torch.optim.Adam([v], lr=self.hparams.foldin_lr)
            for _ in range(self.hparams.foldin_steps):
                loss = self.objective(self.decoder(torch.sigmoid(pre + v)), x, v).sum()
                (v.grad,) = torch.autograd.grad(loss, v)
                opt.step()
        return v.detach()

    def score(self, fold_in: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.sigmoid(self.encoder(fold_in) + self.fold_in(fold_in)))
