"""CDAE: shapes and gradients, the user table sized in setup, fold-in of new users, overfitting a tiny matrix."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import scipy.sparse as sp
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from cfrec.data.batches import PairBatches, RowBatches
from cfrec.data.sparse import to_torch_csr
from cfrec.data.split import Split
from cfrec.models.baselines.cdae import CDAE

GROUPS, USERS_PER_GROUP, ITEMS_PER_GROUP = 4, 10, 8


def tiny_split() -> Split:
    """40 users in 4 taste groups of 8 items, 6 items each; validation = the same users, 4 items in, 2 held out."""
    rng = np.random.default_rng(0)
    rows = [g * ITEMS_PER_GROUP + rng.choice(ITEMS_PER_GROUP, 6, replace=False)
            for g in range(GROUPS) for _ in range(USERS_PER_GROUP)]

    def csr(cols: list[np.ndarray]) -> sp.csr_matrix:
        r = np.repeat(np.arange(len(cols)), [len(c) for c in cols])
        shape = (len(cols), GROUPS * ITEMS_PER_GROUP)
        return sp.csr_matrix((np.ones(len(r), np.float32), (r, np.concatenate(cols))), shape=shape)

    train, fold_in, heldout = csr(rows), csr([c[:4] for c in rows]), csr([c[4:] for c in rows])
    return Split(train, fold_in, heldout, fold_in, heldout)


class TinyData(pl.LightningDataModule):
    """Shuffled training batches of 10 users and one validation batch, exposing `.split` like CFDataModule."""

    def __init__(self, split: Split):
        super().__init__()
        self.split = split

    def train_dataloader(self) -> DataLoader:
        rows = RowBatches(self.split.train)
        return DataLoader(rows, sampler=BatchSampler(RandomSampler(rows), 10, drop_last=False), batch_size=None)

    def val_dataloader(self) -> DataLoader:
        pairs = PairBatches(self.split.val_tr, self.split.val_te)
        return DataLoader(pairs, sampler=BatchSampler(SequentialSampler(pairs), 64, drop_last=False), batch_size=None)


def trainer(epochs: int) -> pl.Trainer:
    return pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)


@pytest.fixture(scope="module")
def fitted() -> tuple[CDAE, TinyData, float]:
    """A CDAE (user table built in setup from split.train) trained 40 epochs; also its NDCG@100 before training.

    The L2 weight is large enough for the user vectors to settle at their optimum within 40 epochs.
    """
    torch.manual_seed(0)
    data = TinyData(tiny_split())
    model = CDAE(n_items=data.split.n_items, latent_dim=16, lr=0.02, weight_decay=0.1)
    before = trainer(1).validate(model, datamodule=data, verbose=False)[0]["val/ndcg@100"]
    trainer(40).fit(model, datamodule=data)
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
