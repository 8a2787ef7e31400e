"""Ranking metrics of Liang et al. (2018), batched in torch (CPU or GPU).

`recall_at_k` and `ndcg_at_k` reproduce `Recall_at_k_batch` and `NDCG_binary_at_k_batch` of the
reference notebook: binary relevance, 1/log2(rank+1) discount, recall denominator min(k, n_heldout).
Per-user values are returned; users without held-out items get NaN and are skipped by `summarize`.
`evaluate` and its siblings run the fold-in over a whole split's sparse rows in batches, for any model with a
`score(rows) -> (users × items) scores` method (closed-form fits, and EASE's λ choice on validation users).
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from cfrec.data.sparse import to_torch_csr

METRICS: tuple[tuple[str, int], ...] = (("recall", 20), ("recall", 50), ("ndcg", 100))


class Scorer(Protocol):
    """What the fold-in evaluation needs of a model: scores for a batch of sparse user rows."""

    def score(self, fold_in: sp.csr_matrix) -> torch.Tensor: ...


def exclude_seen(scores: torch.Tensor, fold_in: torch.Tensor) -> torch.Tensor:
    """Return `scores` with fold-in items set to -inf so they are never ranked (in place).

    A sparse CSR fold-in is applied at its non-zeros only (no (B, I) dense mask is built)."""
    if fold_in.layout == torch.sparse_csr:
        row, col, values = _csr_coordinates(fold_in)
        keep = values > 0
        return scores.index_put_((row[keep], col[keep]), scores.new_tensor(-math.inf))
    seen = fold_in.to_dense() if fold_in.layout != torch.strided else fold_in
    return scores.masked_fill_(seen > 0, -math.inf)


def _csr_coordinates(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    crow = x.crow_indices()
    row = torch.repeat_interleave(torch.arange(x.shape[0], device=x.device), crow[1:] - crow[:-1])
    return row, x.col_indices(), x.values()


def _top_items(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k highest scores per row, best first (partial selection, then sorted)."""
    return torch.topk(scores, min(k, scores.shape[1]), dim=1, sorted=True).indices


def _relevant(heldout: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(hits, n): hits[u, r] = 1.0 if items[u, r] is held out for u; n[u] = number of held-out items.

    Dense held-out rows are gathered; sparse CSR rows are looked up by (user, item) key in their sorted
    non-zeros, so a (B, I) matrix is never built."""
    if heldout.layout != torch.sparse_csr:
        heldout = heldout.to_dense() if heldout.layout != torch.strided else heldout
        return (heldout.gather(1, items) > 0).to(torch.float32), (heldout > 0).sum(1)
    row, col, values = _csr_coordinates(heldout)
    positive = values > 0
    n_items = heldout.shape[1]
    keys = torch.unique(row[positive] * n_items + col[positive])  # sorted; a repeated entry counts once
    n = torch.bincount(keys // n_items, minlength=heldout.shape[0])
    if keys.numel() == 0:
        return torch.zeros(items.shape, device=items.device), n
    query = torch.arange(items.shape[0], device=items.device)[:, None] * n_items + items
    at = torch.searchsorted(keys, query).clamp_(max=keys.numel() - 1)
    return (keys[at] == query).to(torch.float32), n


def _recall(hits: torch.Tensor, n: torch.Tensor, k: int) -> torch.Tensor:
    return hits[:, :k].sum(1) / n.to(torch.float32).clamp(max=k)  # 0/0 -> NaN for users without held-out items


def _ndcg(hits: torch.Tensor, n: torch.Tensor, k: int) -> torch.Tensor:
    hits = hits[:, :k]
    discount = 1.0 / torch.log2(torch.arange(2, hits.shape[1] + 2, device=hits.device, dtype=torch.float32))
    dcg = (hits * discount).sum(1)
    ideal = torch.cat([discount.new_zeros(1), discount.cumsum(0)])[n.clamp(max=hits.shape[1])]
    return dcg / ideal  # 0/0 -> NaN for users without held-out items


def recall_at_k(scores: torch.Tensor, heldout: torch.Tensor, k: int) -> torch.Tensor:
    """|top-k ∩ held-out| / min(k, n_heldout) per user (NaN where n_heldout = 0)."""
    return _recall(*_relevant(heldout, _top_items(scores, k)), k)


def ndcg_at_k(scores: torch.Tensor, heldout: torch.Tensor, k: int) -> torch.Tensor:
    """DCG@k / IDCG@k with binary relevance and 1/log2(rank+1) discount, per user."""
    return _ndcg(*_relevant(heldout, _top_items(scores, k)), k)


def ranking_metrics(scores: torch.Tensor, fold_in: torch.Tensor, heldout: torch.Tensor) -> dict[str, torch.Tensor]:
    """Recall@20, Recall@50 and NDCG@100 per user after excluding fold-in items (scores modified).

    One top-k selection at the largest k serves every metric (the top-20 are the first 20 of the
    sorted top-100); sparse fold-in and held-out rows are used as they are."""
    return ranked_metrics(scores, fold_in, heldout)[0]


def ranked_metrics(scores: torch.Tensor, fold_in: torch.Tensor, heldout: torch.Tensor,
                   top: int = 0) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """`ranking_metrics`, and each user's top max(top, 100) items (B, ·) with their scores, best first (fold-in
    items last, at −inf, when fewer remain): the one selection serves the metrics and the lists."""
    if scores.dtype not in (torch.float32, torch.bfloat16, torch.float16):  # half precision converts exactly:
        scores = scores.float()  # ranking it as it is gives the same order and ties, without a (B, I) copy
    scores = exclude_seen(scores, fold_in)
    k_max = max(k for _, k in METRICS)
    values, items = torch.topk(scores, min(max(top, k_max), scores.shape[1]), dim=1, sorted=True)
    hits, n = _relevant(heldout, items[:, :k_max])
    fns = {"recall": _recall, "ndcg": _ndcg}
    return {f"{name}@{k}": fns[name](hits, n, min(k, scores.shape[1])) for name, k in METRICS}, items, values


def ranked_list_metrics(items: torch.Tensor, heldout: torch.Tensor) -> dict[str, torch.Tensor]:
    """Recall@20, Recall@50 and NDCG@100 per user of given ranked lists (a ranking file's, say).

    `items` (B, L) holds item column indices best first, -1 padding a list shorter than L (an empty row:
    a user with no list); positions beyond L count as misses, so L ≥ 100 gives the same values as
    `ranking_metrics` on scores whose top 100 these are."""
    valid = items >= 0
    hits, n = _relevant(heldout, items.clamp(min=0))
    hits = hits * valid
    k_max = max(k for _, k in METRICS)
    if hits.shape[1] < k_max:  # a short list: the missing positions are misses
        hits = torch.cat([hits, hits.new_zeros(hits.shape[0], k_max - hits.shape[1])], dim=1)
    fns = {"recall": _recall, "ndcg": _ndcg}
    return {f"{name}@{k}": fns[name](hits, n, k) for name, k in METRICS}


def summarize(per_user: dict[str, torch.Tensor]) -> dict[str, float]:
    """Mean and standard error (std with ddof=0 over √N, as Liang's notebook) over users with held-out items."""
    out: dict[str, float] = {}
    for name, values in per_user.items():
        v = values[~torch.isnan(values)].double()
        n = v.numel()
        out[name] = float(v.mean()) if n else float("nan")
        out[f"{name}_se"] = float(v.std(unbiased=False) / math.sqrt(n)) if n else float("nan")
        out["n_users"] = n
    return out


def evaluate(model: Scorer, fold_in: sp.csr_matrix, heldout: sp.csr_matrix, batch_size: int = 2000,
             device: str | torch.device = "cpu", desc: str = "evaluate") -> dict[str, float]:
    """Recall@20/50 and NDCG@100 (mean and SE over users with held-out items)."""
    return summarize_per_user(evaluate_lists(model, fold_in, heldout, batch_size, device, desc)[0])


def summarize_per_user(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """`summarize` of per-user values as `evaluate_lists` returns them (the `user` indices left out)."""
    return summarize({k: v for k, v in values.items() if k != "user"})


def evaluate_lists(
    model: Scorer,
    fold_in: sp.csr_matrix,
    heldout: sp.csr_matrix,
    batch_size: int = 2000,
    device: str | torch.device = "cpu",
    desc: str = "evaluate",
    top_k: int = 100,
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Each user's Recall@20/50 and NDCG@100 (NaN without held-out items) with `user`, the row indices; and every
    user's top max(top_k, 100) items and their scores (row order, best first): the lists the metrics ranked."""
    per_user: dict[str, list[torch.Tensor]] = {"user": [torch.arange(fold_in.shape[0])]}
    top: list[tuple[torch.Tensor, torch.Tensor]] = []
    starts = np.arange(0, fold_in.shape[0], batch_size)
    for start in tqdm(starts, desc=desc, leave=False, disable=len(starts) < 5):
        idx = slice(start, start + batch_size)
        scores = model.score(fold_in[idx]).to(device)
        batch, items, values = ranked_metrics(scores, to_torch_csr(fold_in[idx]).to(device),
                                              to_torch_csr(heldout[idx]).to(device), top_k)
        for name, user_values in batch.items():
            per_user.setdefault(name, []).append(user_values.cpu())
        top.append((items.cpu(), values.float().cpu()))
    return ({k: torch.cat(v) for k, v in per_user.items()}, torch.cat([i for i, _ in top]),
            torch.cat([v for _, v in top]))
