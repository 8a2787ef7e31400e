"""Fold-in evaluation of a `FittedRecommender`, batched over users (the same metrics as `CFModule`)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from cfrec.data.sparse import to_torch_csr
from cfrec.metrics import ranked_metrics, summarize
from cfrec.models.base import FittedRecommender


def evaluate(
    model: FittedRecommender,
    fold_in: sp.csr_matrix,
    heldout: sp.csr_matrix,
    batch_size: int = 2000,
    device: str | torch.device = "cpu",
    desc: str = "evaluate",
) -> dict[str, float]:
    """Recall@20/50 and NDCG@100 (mean and SE over users with held-out items)."""
    return summarize_per_user(evaluate_per_user(model, fold_in, heldout, batch_size, device, desc))


def summarize_per_user(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """`summarize` of per-user values as `evaluate_per_user` returns them (the `user` indices left out)."""
    return summarize({k: v for k, v in values.items() if k != "user"})


def evaluate_per_user(
    model: FittedRecommender,
    fold_in: sp.csr_matrix,
    heldout: sp.csr_matrix,
    batch_size: int = 2000,
    device: str | torch.device = "cpu",
    desc: str = "evaluate",
) -> dict[str, torch.Tensor]:
    """Each user's Recall@20/50 and NDCG@100 (NaN without held-out items), and `user`: the row indices."""
    return evaluate_lists(model, fold_in, heldout, batch_size, device, desc)[0]


def evaluate_lists(
    model: FittedRecommender,
    fold_in: sp.csr_matrix,
    heldout: sp.csr_matrix,
    batch_size: int = 2000,
    device: str | torch.device = "cpu",
    desc: str = "evaluate",
    top_k: int = 100,
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """`evaluate_per_user`, and every user's top max(top_k, 100) items and their scores (row order, best first):
    the lists the metrics ranked."""
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
