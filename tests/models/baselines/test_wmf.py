"""WMF: recovers a block (low-rank) binary matrix, and folding in a training user returns its factor."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from cfrec.data.protocol import liang_split
from cfrec.data.readers import read_interactions
from cfrec.data.split import Split
from cfrec.metrics import evaluate
from cfrec.models.baselines import WMF
from tests.conftest import random_binary


def _split(train: sp.csr_matrix) -> Split:
    return Split(train, train[:1], train[:1], train[:1], train[:1])


def _blocks(n_blocks: int = 3, users: int = 10, items: int = 6) -> sp.csr_matrix:
    """Users of block g clicked exactly the items of block g (rank n_blocks)."""
    return sp.csr_matrix(np.kron(np.eye(n_blocks), np.ones((users, items))).astype(np.float32))


def test_recovers_block_matrix_and_completes_a_new_user() -> None:
    train = _blocks()
    model = WMF(n_items=18, factors=3, alpha=10, regularization=0.01, iterations=30, device="cpu", num_threads=1).fit(
        _split(train)
    )
    top = torch.topk(model.score(train), 6, dim=1).indices.sort(1).values
    assert torch.equal(top, torch.from_numpy(train.toarray()).nonzero()[:, 1].view(30, 6))
    new_user = sp.csr_matrix(([1.0] * 4, ([0] * 4, [6, 7, 8, 9])), shape=(1, 18), dtype=np.float32)
    scores = model.score(new_user)[0]
    scores[[6, 7, 8, 9]] = -np.inf  # what the metrics do with fold-in items
    assert set(torch.topk(scores, 2).indices.tolist()) == {10, 11}
    assert model.chosen == {"factors": 3, "alpha": 10.0, "regularization": 0.01, "iterations": 30}


def test_training_user_folded_in_gets_its_training_factor() -> None:
    train = random_binary(80, 30, 0.2, seed=3)
    model = WMF(
        n_items=30, factors=4, alpha=5, regularization=0.1, iterations=60, device="cpu", num_threads=1, random_state=0
    ).fit(_split(train))
    trained = model.als.user_factors[:10]
    folded = model.fold_in(train[:10])
    assert np.allclose(folded, trained, rtol=1e-2, atol=3e-2 * np.abs(trained).max())


def test_fold_in_solves_hu_objective_with_weight_alpha_on_ones() -> None:
    train = random_binary(50, 20, 0.2, seed=4)
    model = WMF(n_items=20, factors=3, alpha=30, regularization=0.5, iterations=5, device="cpu", num_threads=1).fit(
        _split(train)
    )
    v = model.als.item_factors.astype(np.float64)
    x = train[:1].toarray()[0]
    c = 1 + (30 - 1) * x  # confidence 30 on the 1s, 1 on the 0s
    expected = np.linalg.solve(v.T @ (c[:, None] * v) + 0.5 * np.eye(3), v.T @ (c * x))
    assert np.allclose(model.fold_in(train[:1])[0], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_ml1m_figures(shared_data) -> None:
    """ML-1M (all ratings, 600 + 600 held-out users), alpha 2, λ 10: test NDCG@100 0.484 when measured."""
    files = [shared_data / "ml-1m" / "train.txt", shared_data / "ml-1m" / "test.txt"]
    split = liang_split(read_interactions("adjacency", files), threshold=None, heldout_users=600)
    model = WMF(n_items=split.n_items, factors=100, alpha=2, regularization=10.0, device="cpu").fit(split)
    assert evaluate(model, split.test_tr, split.test_te)["ndcg@100"] == pytest.approx(0.484, abs=0.01)
