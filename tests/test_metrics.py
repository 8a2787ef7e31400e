"""Recall@K / NDCG@K against Liang et al.'s numpy functions (cfrec.reference) and hand-computed cases."""

import math

import numpy as np
import torch

from cfrec.data.sparse import to_torch_csr
from cfrec.metrics import exclude_seen, ndcg_at_k, ranked_list_metrics, ranking_metrics, recall_at_k, summarize
from cfrec.reference import ndcg_binary_at_k_batch, recall_at_k_batch
from tests.conftest import random_binary


def test_metrics_match_liang_reference_on_random_scores():
    rng = np.random.default_rng(0)
    heldout = random_binary(64, 300, 0.05, seed=1).toarray()
    fold_in = random_binary(64, 300, 0.1, seed=2).toarray() * (heldout == 0)
    scores = rng.normal(size=heldout.shape).astype(np.float32)
    ours = ranking_metrics(torch.tensor(scores), torch.tensor(fold_in), torch.tensor(heldout))
    masked = np.where(fold_in > 0, -np.inf, scores)
    for k in (20, 50):
        np.testing.assert_allclose(ours[f"recall@{k}"].numpy(), recall_at_k_batch(masked, heldout, k),
                                   rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(ours["ndcg@100"].numpy(), ndcg_binary_at_k_batch(masked, heldout, 100),
                               rtol=1e-5, equal_nan=True)


def test_hand_computed_user():
    # items ranked 0 > 1 > 2 > 3 > 4; held-out {1, 4}: hits at ranks 2 and 5
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]])
    heldout = torch.tensor([[0.0, 1.0, 0.0, 0.0, 1.0]])
    dcg = 1 / math.log2(3) + 1 / math.log2(6)
    idcg = 1 + 1 / math.log2(3)
    assert math.isclose(ndcg_at_k(scores, heldout, 100).item(), dcg / idcg, rel_tol=1e-6)
    assert recall_at_k(scores, heldout, 2).item() == 0.5  # 1 hit / min(2, 2)
    assert recall_at_k(scores, heldout, 1).item() == 0.0  # top-1 is item 0
    # recall denominator is min(k, n): with k=5 both are found -> 2 / 2
    assert recall_at_k(scores, heldout, 5).item() == 1.0


def test_fold_in_items_are_never_ranked():
    scores = torch.tensor([[9.0, 1.0, 0.5]])
    fold_in = torch.tensor([[1.0, 0.0, 0.0]])
    heldout = torch.tensor([[0.0, 1.0, 0.0]])
    out = ranking_metrics(scores, fold_in, heldout)
    assert out["ndcg@100"].item() == 1.0  # item 0 removed, item 1 comes first


def test_users_without_heldout_items_are_skipped_in_the_summary():
    scores = torch.randn(3, 10)
    heldout = torch.zeros(3, 10)
    heldout[0, scores[0].argmax()] = 1.0
    per_user = ranking_metrics(scores, torch.zeros(3, 10), heldout)
    assert torch.isnan(per_user["ndcg@100"][1:]).all()
    summary = summarize(per_user)
    assert summary["n_users"] == 1 and summary["ndcg@100"] == 1.0 and summary["ndcg@100_se"] == 0.0


def test_standard_error_is_population_std_over_sqrt_n():
    values = torch.tensor([0.0, 1.0, 1.0, 0.0])
    s = summarize({"ndcg@100": values})
    assert math.isclose(s["ndcg@100_se"], np.std([0, 1, 1, 0]) / 2)


def test_sparse_fold_in_and_heldout_are_accepted():
    heldout = random_binary(5, 40, 0.1, seed=3)
    scores = torch.randn(5, 40)
    from cfrec.data.sparse import to_torch_csr

    dense = ranking_metrics(scores.clone(), torch.zeros(5, 40), torch.tensor(heldout.toarray()))
    sparse = ranking_metrics(scores.clone(), to_torch_csr(heldout * 0), to_torch_csr(heldout))
    for name in dense:
        torch.testing.assert_close(dense[name], sparse[name], equal_nan=True)


def test_ranked_lists_give_the_metrics_of_the_scores_they_come_from():
    scores = torch.randn(40, 250, generator=torch.Generator().manual_seed(3))
    fold_in, heldout = random_binary(40, 250, 0.1, seed=4), random_binary(40, 250, 0.05, seed=5)
    heldout = heldout - heldout.multiply(fold_in)
    heldout.eliminate_zeros()
    expected = ranking_metrics(scores.clone(), to_torch_csr(fold_in), to_torch_csr(heldout))
    top = torch.topk(exclude_seen(scores.clone(), to_torch_csr(fold_in)), 120, dim=1).indices
    for items in (top, top[:, :100]):
        got = ranked_list_metrics(items, to_torch_csr(heldout))
        for name in expected:
            torch.testing.assert_close(got[name], expected[name], equal_nan=True)


def test_short_and_padded_lists_count_missing_positions_as_misses():
    heldout = torch.zeros(3, 10)
    heldout[:, [2, 5]] = 1.0  # every user has 2 held-out items
    items = torch.tensor([[5, 2, 0], [0, 5, -1], [-1, -1, -1]])  # hits at ranks 1-2; rank 2; no list
    got = ranked_list_metrics(items, heldout)
    idcg = 1 + 1 / math.log2(3)
    torch.testing.assert_close(got["ndcg@100"], torch.tensor([1.0, (1 / math.log2(3)) / idcg, 0.0]))
    torch.testing.assert_close(got["recall@20"], torch.tensor([1.0, 0.5, 0.0]))
