"""Fold-in evaluation of a `FittedRecommender`, batched over users (the same metrics as `CFModule`)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from cfrec.data.sparse import to_torch_csr
from cfrec.metrics import ranking_metrics, summarize
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
    values = evaluate_per_user(model, fold_in, heldout, batch_size, device, desc)
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
    per_user: dict[str, list[torch.Tensor]] = {"user": [torch.arange(fold_in.shape[0])]}
    starts = np.arange(0, fold_in.shape[0], batch_size)
    for start in tqdm(starts, desc=desc, leave=False, disable=len(starts) < 5):
        idx = slice(start, start + batch_size)
        scores = model.score(fold_in[idx]).to(device)
        batch = ranking_metrics(scores, to_torch_csr(fold_in[idx]).to(device), to_torch_csr(heldout[idx]).to(device))
        for name, values in batch.items():
            per_user.setdefault(name, []).append(values.cpu())
    return {k: torch.cat(v) for k, v in per_user.items()}
