"""Ranking metrics of Liang et al. (2018), batched in torch (CPU or GPU).

`recall_at_k` and `ndcg_at_k` reproduce `Recall_at_k_batch` and `NDCG_binary_at_k_batch` of the
reference notebook: binary relevance, 1/log2(rank+1) discount, recall denominator min(k, n_heldout).
Per-user values are returned; users without held-out items get NaN and are skipped by `summarize`.
"""

from __future__ import annotations

import math

import torch

METRICS: tuple[tuple[str, int], ...] = (("recall", 20), ("recall", 50), ("ndcg", 100))


def exclude_seen(scores: torch.Tensor, fold_in: torch.Tensor) -> torch.Tensor:
    """Return `scores` with fold-in items set to -inf so they are never ranked (in place)."""
    seen = fold_in.to_dense() if fold_in.layout != torch.strided else fold_in
    return scores.masked_fill_(seen > 0, -math.inf)


def _hits(scores: torch.Tensor, heldout: torch.Tensor, k: int) -> torch.Tensor:
    """hits[u, r] = 1 if the item ranked r+1 for user u is held out; partial top-k, then sorted."""
    k = min(k, scores.shape[1])
    top = torch.topk(scores, k, dim=1, sorted=True).indices
    return (heldout.gather(1, top) > 0).to(torch.float32)


def recall_at_k(scores: torch.Tensor, heldout: torch.Tensor, k: int) -> torch.Tensor:
    """|top-k ∩ held-out| / min(k, n_heldout) per user (NaN where n_heldout = 0)."""
    n = (heldout > 0).sum(1).to(torch.float32)
    hits = _hits(scores, heldout, k).sum(1)
    return hits / n.clamp(max=k)  # 0/0 -> NaN for users without held-out items


def ndcg_at_k(scores: torch.Tensor, heldout: torch.Tensor, k: int) -> torch.Tensor:
    """DCG@k / IDCG@k with binary relevance and 1/log2(rank+1) discount, per user."""
    hits = _hits(scores, heldout, k)
    discount = 1.0 / torch.log2(torch.arange(2, hits.shape[1] + 2, device=scores.device, dtype=torch.float32))
    dcg = (hits * discount).sum(1)
    n = (heldout > 0).sum(1).clamp(max=hits.shape[1])
    ideal = torch.cat([discount.new_zeros(1), discount.cumsum(0)])[n]
    return dcg / ideal  # 0/0 -> NaN for users without held-out items


def ranking_metrics(scores: torch.Tensor, fold_in: torch.Tensor, heldout: torch.Tensor) -> dict[str, torch.Tensor]:
    """Recall@20, Recall@50 and NDCG@100 per user after excluding fold-in items (scores modified)."""
    scores = exclude_seen(scores.float(), fold_in)
    heldout = heldout.to_dense() if heldout.layout != torch.strided else heldout
    fns = {"recall": recall_at_k, "ndcg": ndcg_at_k}
    return {f"{name}@{k}": fns[name](scores, heldout, k) for name, k in METRICS}


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
