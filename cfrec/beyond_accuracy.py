"""Beyond-accuracy figures of a set of top-k lists, and accuracy by user activity (Liang et al.'s Figure 3).

Top-k lists come as an integer array (users × k) of item column indices, best first, with -1 padding a
list shorter than k (a user an external ranking file leaves out has an all -1 row). All functions are
pure and vectorised (numpy), so `cfrec.run.training` (models' test users) and `cfrec.rankings` (ranking
files) give the same numbers for the same lists.

- `coverage@k`: distinct items in the users' top k ÷ catalogue size (the split's item vocabulary);
- `gini@k`: Gini index of how often each catalogue item is recommended (items never recommended count,
  with 0): 0 = every item equally often, → 1 = all recommendations on one item (RecBole's GiniIndex);
- `popularity@k`: mean over users of the mean training popularity of their recommended items, an item's
  popularity being the share of training users who have it (0–1; RecBole's and Elliot's average
  recommendation popularity, normalised by the number of training users).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

BEYOND_K = 100
BEYOND_KEYS = (f"coverage@{BEYOND_K}", f"gini@{BEYOND_K}", f"popularity@{BEYOND_K}")  # in metrics.json's `test`
QUINTILES = 5


def _recommended(top: np.ndarray, k: int) -> np.ndarray:
    """The item indices of the first k columns, padding (-1) dropped, flattened."""
    items = np.asarray(top)[:, :k].ravel()
    return items[items >= 0]


def coverage(top: np.ndarray, n_items: int, k: int = BEYOND_K) -> float:
    """Share of the catalogue's `n_items` items appearing in at least one user's top k."""
    return float(np.unique(_recommended(top, k)).size / n_items)


def gini_index(top: np.ndarray, n_items: int, k: int = BEYOND_K) -> float:
    """Gini index of the recommendation counts of all `n_items` items: Σ_i (2i − n − 1)·c_(i) / (n·Σ c),
    with c_(1) ≤ … ≤ c_(n) the sorted counts (1-based i). NaN when nothing is recommended."""
    counts = np.sort(np.bincount(_recommended(top, k), minlength=n_items)).astype(np.float64)
    total = counts.sum()
    if total == 0:
        return float("nan")
    i = np.arange(1, n_items + 1)
    return float(((2 * i - n_items - 1) * counts).sum() / (n_items * total))


def item_popularity(train: sp.csr_matrix) -> np.ndarray:
    """Share of training users who have each item (column counts ÷ rows of `train`)."""
    return np.asarray(train.getnnz(axis=0), dtype=np.float64) / max(train.shape[0], 1)


def mean_popularity(top: np.ndarray, popularity: np.ndarray, k: int = BEYOND_K) -> float:
    """Mean over users with at least one recommended item of the mean `popularity` of their top-k items."""
    items = np.asarray(top)[:, :k]
    valid = items >= 0
    n = valid.sum(1)
    per_user = np.where(valid, popularity[np.where(valid, items, 0)], 0.0).sum(1)
    has = n > 0
    return float((per_user[has] / n[has]).mean()) if has.any() else float("nan")


def beyond_accuracy(top: np.ndarray, n_items: int, popularity: np.ndarray, k: int = BEYOND_K) -> dict[str, float]:
    """`coverage@k`, `gini@k` and `popularity@k` of the lists `top` (the keys metrics.json's `test` holds)."""
    return {f"coverage@{k}": coverage(top, n_items, k), f"gini@{k}": gini_index(top, n_items, k),
            f"popularity@{k}": mean_popularity(top, popularity, k)}


def activity_quintiles(values: np.ndarray, activity: np.ndarray, n_groups: int = QUINTILES) -> pd.DataFrame:
    """Mean and standard error of per-user `values` (e.g. NDCG@100; NaN = user without held-out items, left
    out) by quintile of `activity` (the users' fold-in item counts), as Liang et al.'s Figure 3.

    Users are ordered by activity (ties by row, so the groups are deterministic) and cut into `n_groups`
    groups of equal size (±1); columns: quintile (1 = least active), activity_min, activity_max,
    n_users, mean, se (std with ddof=0 over √n, as `cfrec.metrics.summarize`).
    """
    values, activity = np.asarray(values, dtype=np.float64), np.asarray(activity)
    if values.shape != activity.shape:
        raise ValueError(f"{values.shape[0]} per-user values but {activity.shape[0]} activity counts")
    keep = ~np.isnan(values)
    values, activity = values[keep], activity[keep]
    order = np.argsort(activity, kind="stable")
    group = np.empty(len(order), dtype=np.int64)
    group[order] = np.arange(len(order)) * n_groups // max(len(order), 1)
    frame = pd.DataFrame({"quintile": group + 1, "activity": activity, "value": values})
    out = frame.groupby("quintile").agg(activity_min=("activity", "min"), activity_max=("activity", "max"),
                                        n_users=("value", "size"), mean=("value", "mean"),
                                        se=("value", lambda v: v.std(ddof=0) / np.sqrt(len(v))))
    return out.reset_index()
