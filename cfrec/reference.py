"""Liang et al.'s Mult-VAE, split and metrics, written to be read: the place to read the model.

A transcription of the reference notebook (dawenl/vae_cf, `VAE_ML20M_WWW2018.ipynb`) in plain pandas, numpy
and PyTorch: dense rows, no speed paths. It shares no code with cfrec's own implementation, which the tests
check against it: the split (`cfrec.data.protocol.liang_split`, tests/data/test_protocol.py), the metrics
(`cfrec.metrics`, tests/test_metrics.py) and the model, step for step (`cfrec.models.vae.VAE` with
`GaussianEncoder`, `Multinomial`, `StandardNormal`, `Anneal`; tests/models/test_vae.py). The benchmarks time
and score cfrec against it (benchmarks/reference_multvae.py, plain_loop.py, bench_*.py).

Equations: Liang et al. 2018 (WWW, *Variational Autoencoders for Collaborative Filtering*) and, as the rest
of cfrec numbers them, Zamani et al. 2022 (ICTIR), "ICTIR Eq. n".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    import pandas as pd
    import scipy.sparse as sp

# ---------------------------------------------------------------------------------------------- the split


def notebook_split(
    raw: pd.DataFrame, n_heldout: int, min_uc: int = 5, min_sc: int = 0
) -> tuple[dict[str, sp.csr_matrix], np.ndarray, dict[str, np.ndarray]]:
    """The notebook's preprocessing (ML-20M section) on a (user, item, rating) frame: (the five matrices by
    part, the item ids by column, the user ids of each part); userId/movieId renamed, pandas-2-safe counts."""
    import pandas as pd  # here, not at the top: the benchmarks import this module on machines without pandas
    import scipy.sparse as sp

    raw = raw[raw["rating"] > 3.5]  # ratings of 4 and above are the positives

    def get_count(tp, id):
        return tp[[id]].groupby(id, as_index=True).size()

    if min_sc > 0:  # items with at least min_sc users, then users with at least min_uc items
        itemcount = get_count(raw, "item")
        raw = raw[raw["item"].isin(itemcount.index[itemcount >= min_sc])]
    if min_uc > 0:
        usercount = get_count(raw, "user")
        raw = raw[raw["user"].isin(usercount.index[usercount >= min_uc])]
    unique_uid = get_count(raw, "user").index
    np.random.seed(98765)  # shuffle the users; the last 2 · n_heldout are the validation, then the test users
    unique_uid = unique_uid[np.random.permutation(unique_uid.size)]
    n_users = unique_uid.size
    tr_users = unique_uid[: n_users - n_heldout * 2]
    vd_users = unique_uid[n_users - n_heldout * 2 : n_users - n_heldout]
    te_users = unique_uid[n_users - n_heldout :]
    train_plays = raw.loc[raw["user"].isin(tr_users)]
    unique_sid = pd.unique(train_plays["item"])  # the item vocabulary: items of training users
    show2id = {sid: i for i, sid in enumerate(unique_sid)}
    profile2id = {pid: i for i, pid in enumerate(unique_uid)}

    def split_train_test_proportion(data, test_prop=0.2):
        # each held-out user with ≥ 5 items gives int(0.2 · n) random items to predict; the rest is fold-in
        tr_list, te_list = [], []
        np.random.seed(98765)
        for _, group in data.groupby("user"):
            n_items_u = len(group)
            if n_items_u >= 5:
                idx = np.zeros(n_items_u, dtype="bool")
                idx[np.random.choice(n_items_u, size=int(test_prop * n_items_u), replace=False).astype("int64")] = True
                tr_list.append(group[np.logical_not(idx)])
                te_list.append(group[idx])
            else:
                tr_list.append(group)
        return pd.concat(tr_list), pd.concat(te_list)

    def held(users):
        plays = raw.loc[raw["user"].isin(users)]
        plays = plays.loc[plays["item"].isin(unique_sid)]
        return split_train_test_proportion(plays)

    def numerize(tp, offset):
        rows = np.array([profile2id[x] for x in tp["user"]]) - offset
        cols = np.array([show2id[x] for x in tp["item"]])
        return rows, cols

    def matrix(tp, offset, n_rows):
        r, c = numerize(tp, offset)
        return sp.csr_matrix((np.ones(len(r), dtype=np.float32), (r, c)), shape=(n_rows, len(unique_sid)))

    n_tr = len(tr_users)
    out = {"train": matrix(train_plays, 0, n_tr)}
    for name, users, offset in (("val", vd_users, n_tr), ("test", te_users, n_tr + n_heldout)):
        tr, te = held(users)
        out[f"{name}_tr"], out[f"{name}_te"] = matrix(tr, offset, n_heldout), matrix(te, offset, n_heldout)
    return out, unique_sid, {"train": tr_users, "val": vd_users, "test": te_users}


# -------------------------------------------------------------------------------------------- the metrics
# Scores x_pred (users × items) with the fold-in items already set to −inf; heldout the 0/1 truth. A user
# without held-out items gets NaN (the notebook never passes one; cfrec skips them in its summaries).


def ndcg_binary_at_k_batch(x_pred: np.ndarray, heldout: np.ndarray, k: int = 100) -> np.ndarray:
    """The notebook's NDCG@k per user: binary relevance, discount 1/log2(rank + 1), ideal over min(n, k) hits."""
    batch = x_pred.shape[0]
    idx_topk_part = np.argpartition(-x_pred, k, axis=1)  # the top k in any order, then sorted
    topk_part = x_pred[np.arange(batch)[:, None], idx_topk_part[:, :k]]
    idx_part = np.argsort(-topk_part, axis=1)
    idx_topk = idx_topk_part[np.arange(batch)[:, None], idx_part]
    tp = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (heldout[np.arange(batch)[:, None], idx_topk] * tp).sum(axis=1)
    idcg = np.array([tp[: min(n, k)].sum() for n in (heldout > 0).sum(axis=1)])
    with np.errstate(invalid="ignore", divide="ignore"):
        return dcg / idcg


def recall_at_k_batch(x_pred: np.ndarray, heldout: np.ndarray, k: int) -> np.ndarray:
    """The notebook's Recall@k per user: hits in the top k over min(k, n_heldout), not over n_heldout."""
    idx = np.argpartition(-x_pred, k, axis=1)
    x_pred_binary = np.zeros_like(x_pred, dtype=bool)
    x_pred_binary[np.arange(x_pred.shape[0])[:, None], idx[:, :k]] = True
    x_true_binary = heldout > 0
    tmp = (np.logical_and(x_true_binary, x_pred_binary).sum(axis=1)).astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        return tmp / np.minimum(k, x_true_binary.sum(axis=1))


def liang_metrics(x_pred: np.ndarray, heldout: np.ndarray) -> dict[str, np.ndarray]:
    """The paper's three metrics per user: Recall@20, Recall@50 and NDCG@100."""
    return {"recall@20": recall_at_k_batch(x_pred, heldout, 20), "recall@50": recall_at_k_batch(x_pred, heldout, 50),
            "ndcg@100": ndcg_binary_at_k_batch(x_pred, heldout, 100)}


# ---------------------------------------------------------------------------------------------- the model


class MultVAE(nn.Module):
    """The notebook's MultiVAE: q [I → 600 → 2·200], p [200 → 600 → I], tanh, dropout 0.5 on the L2-normalised
    input; weights Glorot-uniform, biases truncated N(0, 0.001²) as the notebook's TF initialisers."""

    def __init__(self, n_items: int, hidden: int = 600, latent: int = 200, dropout: float = 0.5):
        super().__init__()
        self.q1, self.q2 = nn.Linear(n_items, hidden), nn.Linear(hidden, 2 * latent)
        self.p1, self.p2 = nn.Linear(latent, hidden), nn.Linear(hidden, n_items)
        for layer in (self.q1, self.q2, self.p1, self.p2):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.trunc_normal_(layer.bias, std=0.001)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits f_θ(z), μ, log σ²) for dense rows x; z is sampled in training and is μ in evaluation."""
        h = self.drop(F.normalize(x, dim=1))
        # q_φ(z|x) = N(μ_φ(x), diag σ²_φ(x)) (ICTIR Eq. 3): one network gives both halves
        mu, logvar = self.q2(torch.tanh(self.q1(h))).chunk(2, dim=1)
        # the reparameterisation trick, z = μ + σ ⊙ ε with ε ~ N(0, I); as the notebook, ε is drawn in
        # evaluation too and multiplied by 0 (so the generator's state does not depend on the mode)
        z = mu + self.training * torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.p2(torch.tanh(self.p1(z))), mu, logvar

    def loss(self, x: torch.Tensor, beta: float) -> torch.Tensor:
        """−L_β averaged over users (ICTIR Eq. 5): multinomial NLL + β · KL(q_φ(z|x) ‖ N(0, I))."""
        logits, mu, logvar = self(x)
        # log p_θ(x|z) = Σ_i x_i log π_i(z), π = softmax(f_θ(z)) (Liang et al. Eq. 2, ICTIR Eq. 8)
        neg_ll = -torch.mean(torch.sum(F.log_softmax(logits, 1) * x, dim=1))
        # KL(N(μ, σ²) ‖ N(0, I)) in closed form, as the notebook writes it
        kl = torch.mean(torch.sum(0.5 * (-logvar + torch.exp(logvar) + mu**2 - 1), dim=1))
        # β annealed from 0 to 0.2 over training by the caller: β = min(0.2, step / total_anneal_steps)
        return neg_ll + beta * kl
