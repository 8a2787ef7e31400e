"""EASE: closed form against numpy, zero diagonal, and the λ grid picking the best validation NDCG."""

import numpy as np
import pytest
import torch

from cfrec.data.protocol import liang_split
from cfrec.data.readers import read_interactions
from cfrec.data.split import Split
from cfrec.metrics import evaluate
from cfrec.models.baselines import EASE, Popularity
from cfrec.models.baselines.ease import EASEMemoryError, check_memory
from cfrec.reference import ndcg_binary_at_k_batch
from tests.conftest import random_binary


def _numpy_ease(x: np.ndarray, lam: float) -> np.ndarray:
    p = np.linalg.inv(x.T @ x + lam * np.eye(x.shape[1]))
    b = np.eye(x.shape[1]) - p / np.diag(p)[None, :]
    return b


def _split(seed: int = 0) -> Split:
    m = random_binary(60, 12, 0.3, seed)
    return Split(m[:40], m[40:50], m[50:60], m[40:50], m[50:60])


def test_closed_form_matches_numpy_and_diagonal_is_zero() -> None:
    split = _split()
    model = EASE(n_items=12, lambdas=3.0, device="cpu").fit(split)
    expected = _numpy_ease(split.train.toarray().astype(np.float64), 3.0)
    assert np.allclose(model.B.numpy(), expected, atol=1e-5)
    assert torch.all(model.B.diagonal() == 0)
    fold_in = split.val_tr[:3]
    assert np.allclose(model.score(fold_in).numpy(), fold_in.toarray() @ expected, atol=1e-4)
    assert model.chosen == {"lambda": 3.0, "val_ndcg@100_by_lambda": {}}


def test_grid_picks_best_validation_ndcg() -> None:
    split = _split(1)
    model = EASE(n_items=12, lambdas=[0.5, 5.0, 50.0, 500.0], device="cpu").fit(split)
    by_lambda = model.chosen["val_ndcg@100_by_lambda"]
    assert set(by_lambda) == {"0.5", "5", "50", "500"}
    for lam, ndcg in by_lambda.items():  # each recorded value is that λ's own validation NDCG@100
        single = EASE(n_items=12, lambdas=float(lam), device="cpu").fit(split)
        assert evaluate(single, split.val_tr, split.val_te)["ndcg@100"] == pytest.approx(ndcg, abs=1e-6)
    assert len(set(by_lambda.values())) > 1
    assert by_lambda[f"{model.chosen['lambda']:g}"] == max(by_lambda.values())
    expected = _numpy_ease(split.train.toarray().astype(np.float64), model.chosen["lambda"])
    assert np.allclose(model.B.numpy(), expected, atol=1e-5)


def test_refuses_when_gram_does_not_fit() -> None:
    with pytest.raises(EASEMemoryError, match=r"10000000 items needs about 1600000\.0 GB"):
        check_memory(10_000_000, torch.device("cpu"))
    with pytest.raises(ValueError):
        check_memory(10_000_000, torch.device("cpu"))
    check_memory(100, torch.device("cpu"))
    assert issubclass(EASEMemoryError, MemoryError)


@pytest.mark.slow
def test_ml1m_figures(shared_data) -> None:
    """ML-1M (all ratings, 600 + 600 held-out users): λ = 1000 wins, the fit equals an independent float64
    closed form on the same split, and test NDCG@100 is 0.490 as measured."""
    files = [shared_data / "ml-1m" / "train.txt", shared_data / "ml-1m" / "test.txt"]
    split = liang_split(read_interactions("adjacency", files), threshold=None, heldout_users=600)
    ease = EASE(n_items=split.n_items, lambdas=[200, 1000, 5000], device="cpu").fit(split)
    assert ease.chosen["lambda"] == 1000
    test = evaluate(ease, split.test_tr, split.test_te)
    assert test["ndcg@100"] == pytest.approx(0.490, abs=0.005)
    # an independent float64 closed form on the same split: same weights, same scores, same ranking metrics
    expected = _numpy_ease(split.train.toarray().astype(np.float64), 1000.0)
    assert np.abs(ease.B.numpy() - expected).max() < 1e-5
    scores = split.test_tr.toarray() @ expected
    assert np.abs(ease.score(split.test_tr).numpy() - scores).max() < 1e-4
    fold_in, heldout = split.test_tr.toarray(), split.test_te.toarray()
    reference = np.nanmean(ndcg_binary_at_k_batch(np.where(fold_in > 0, -np.inf, scores), heldout, 100))
    assert test["ndcg@100"] == pytest.approx(reference, abs=1e-4)
    popularity = evaluate(Popularity(split.n_items).fit(split), split.test_tr, split.test_te)
    assert popularity["ndcg@100"] < test["ndcg@100"] - 0.2
