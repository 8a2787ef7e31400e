"""CDAE: shapes and gradients, the user table sized in setup, fold-in of new users, overfitting a tiny matrix."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from cfrec.data.batches import RowBatches
from cfrec.data.sparse import to_torch_csr
from cfrec.data.split import Split
from cfrec.models.baselines.cdae import CDAE
from tests.conftest import quiet_trainer, tiny_loaders, tiny_split


class TinyData(pl.LightningDataModule):
    """Shuffled training batches of 10 users and one validation batch, exposing `.split` like CFDataModule."""

    def __init__(self, split: Split):
        super().__init__()
        self.split = split

    def train_dataloader(self) -> DataLoader:
        return tiny_loaders(self.split)[0]

    def val_dataloader(self) -> DataLoader:
        return tiny_loaders(self.split)[1]


@pytest.fixture(scope="module")
def fitted() -> tuple[CDAE, TinyData, float]:
    """A CDAE (user table built in setup from split.train) trained 40 epochs; also its NDCG@100 before training.

    The L2 weight is large enough for the user vectors to settle at their optimum within 40 epochs.
    """
    torch.manual_seed(0)
    data = TinyData(tiny_split())
    model = CDAE(n_items=data.split.n_items, latent_dim=16, lr=0.02, weight_decay=0.1)
    before = quiet_trainer(1).validate(model, datamodule=data, verbose=False)[0]["val/ndcg@100"]
    quiet_trainer(40).fit(model, datamodule=data)
    return model, data, before


@pytest.mark.parametrize("loss", ["logistic", "multinomial"])
def test_training_step_shapes_and_gradients(loss: str) -> None:
    split = tiny_split()
    model = CDAE(n_items=split.n_items, latent_dim=5, loss=loss, n_users=split.train.shape[0])
    batch = RowBatches(split.train)[[3, 7]]
    model.training_step(batch, 0).backward()
    grad_rows = model.user_vectors.weight.grad.abs().sum(1).nonzero().flatten().tolist()
    assert grad_rows == [3, 7]  # only the batch's users' vectors move
    assert model.encoder.weight.grad.abs().sum() > 0 and model.decoder.weight.grad.abs().sum() > 0
    assert model.score(to_torch_csr(split.val_tr[:3])).shape == (3, split.n_items)


def test_user_table_from_setup_and_checkpoint(fitted: tuple[CDAE, TinyData, float]) -> None:
    model, data, _ = fitted
    assert model.user_vectors.weight.shape == (data.split.train.shape[0], 16)
    fresh = CDAE(n_items=data.split.n_items, latent_dim=16)
    checkpoint = {"state_dict": model.state_dict()}
    fresh.on_load_checkpoint(checkpoint)
    fresh.load_state_dict(checkpoint["state_dict"])
    assert torch.equal(fresh.user_vectors.weight, model.user_vectors.weight)


def test_overfits_tiny_matrix(fitted: tuple[CDAE, TinyData, float]) -> None:
    model, _, before = fitted
    assert model.results["val"]["ndcg@100"] > max(0.8, before + 0.3)


def test_fold_in_of_a_training_user_reproduces_its_vector_and_scores(fitted: tuple[CDAE, TinyData, float]) -> None:
    """A training user folded in as a new user from its own row gets back (nearly) its learned vector and ranking."""
    model, data, _ = fitted
    model.eval()
    x = to_torch_csr(data.split.train)
    with torch.no_grad():
        pre = model.encoder(x.to_dense())
        trained = model.decoder(torch.sigmoid(pre + model.user_vectors.weight))
        without_vector = model.decoder(torch.sigmoid(pre))
    v = model.fold_in(x)
    assert torch.nn.functional.cosine_similarity(v, model.user_vectors.weight).min() > 0.95
    folded = model.score(x).detach()
    assert torch.allclose(folded, model.decoder(torch.sigmoid(pre + v)).detach(), atol=1e-5)

    def agreement(scores: torch.Tensor) -> float:
        """Mean Spearman correlation with the trained scores over each user's unseen items."""
        values = []
        for s, t, seen in zip(scores, trained, x.to_dense() > 0):
            rs, rt = (r[~seen].argsort().argsort().double() for r in (s, t))
            rs, rt = rs - rs.mean(), rt - rt.mean()
            values.append(float((rs * rt).sum() / (rs.norm() * rt.norm())))
        return float(np.mean(values))

    assert agreement(folded) > 0.95
    assert agreement(folded) > agreement(without_vector) + 0.05
