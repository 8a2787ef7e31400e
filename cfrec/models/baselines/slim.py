"""SLIM (Ning & Karypis 2011): non-negative item-item W, zero diagonal, one elastic net per item.

Column j of W minimises ½‖x_j − X w‖² + (l2/2)‖w‖² + l1‖w‖₁ with w ≥ 0 and w_j = 0 (SLIM's own
units, where the paper's grid {0.1, 0.5, 1, 5} lives). sklearn's ElasticNet divides the loss by n_users,
so it gets alpha = (l1 + l2)/n and l1_ratio = l1/(l1 + l2). Column j is zeroed in a private copy of X while
item j is fitted. Items are split into chunks fitted in parallel by joblib threads (sklearn's sparse
coordinate descent releases the GIL; processes would each re-import torch and copy X).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet

from cfrec.data.split import Split
from cfrec.models.base import FittedRecommender

log = logging.getLogger(__name__)


def fit_columns(
    x: sp.csc_matrix, items: np.ndarray, alpha: float, l1_ratio: float, max_iter: int, tol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Rows, columns and values of W's non-zeros for `items`, and how many fits did not converge."""
    x = x.copy()  # private: column j is zeroed while item j is fitted
    enet = ElasticNet(
        alpha=alpha, l1_ratio=l1_ratio, positive=True, fit_intercept=False, copy_X=False, max_iter=max_iter, tol=tol
    )
    rows, cols, vals, not_converged = [], [], [], 0
    for j in items:
        lo, hi = x.indptr[j], x.indptr[j + 1]
        target = np.zeros(x.shape[0])
        saved = x.data[lo:hi].copy()
        target[x.indices[lo:hi]] = saved
        x.data[lo:hi] = 0.0
        enet.fit(x, target, check_input=False)
        x.data[lo:hi] = saved
        not_converged += enet.n_iter_ >= max_iter
        nz = np.flatnonzero(enet.coef_)
        rows.append(nz)
        cols.append(np.full(len(nz), j))
        vals.append(enet.coef_[nz])
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), not_converged


class SLIM(FittedRecommender):
    """Sparse linear method; scores = X_foldin · W with W sparse (CSR)."""

    def __init__(
        self,
        n_items: int,
        l1: float = 1.0,
        l2: float = 1.0,
        max_iter: int = 1000,
        tol: float = 1e-4,
        n_jobs: int = -1,
        chunks_per_job: int = 4,
    ) -> None:
        if l1 < 0 or l2 < 0 or l1 + l2 == 0:
            raise ValueError(f"SLIM needs l1 >= 0, l2 >= 0 and l1 + l2 > 0 (got l1={l1}, l2={l2})")
        self.n_items = n_items
        self.l1, self.l2 = float(l1), float(l2)
        self.max_iter, self.tol = max_iter, tol
        self.n_jobs, self.chunks_per_job = n_jobs, chunks_per_job
        self.W = sp.csr_matrix((n_items, n_items), dtype=np.float32)
        self.chosen = {}

    def fit(self, split: Split) -> SLIM:
        """One non-negative elastic net per item on the training rows, items in parallel chunks."""
        x = split.train.tocsc().astype(np.float64)
        x.sort_indices()
        n_users, n_items = x.shape
        alpha, l1_ratio = (self.l1 + self.l2) / n_users, self.l1 / (self.l1 + self.l2)
        chunks = np.array_split(np.arange(n_items), max(1, effective_n_jobs(self.n_jobs) * self.chunks_per_job))
        with warnings.catch_warnings():  # counted per item instead (catch_warnings is not thread-safe)
            warnings.simplefilter("ignore", ConvergenceWarning)
            parts = Parallel(n_jobs=self.n_jobs, prefer="threads")(
                delayed(fit_columns)(x, items, alpha, l1_ratio, self.max_iter, self.tol)
                for items in chunks
                if len(items)
            )
        rows, cols, vals = (np.concatenate([p[k] for p in parts]) for k in range(3))
        not_converged = sum(p[3] for p in parts)
        self.W = sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(n_items, n_items))
        if not_converged:
            log.warning("SLIM: %d of %d items did not converge in max_iter=%d", not_converged, n_items, self.max_iter)
        self.chosen = {
            "l1": self.l1,
            "l2": self.l2,
            "sklearn_alpha": alpha,
            "l1_ratio": l1_ratio,
            "nnz_per_item": self.W.nnz / n_items,
            "not_converged": int(not_converged),
        }
        return self

    def score(self, fold_in: sp.csr_matrix) -> torch.Tensor:
        """X_foldin · W as a dense float32 tensor."""
        return torch.from_numpy((fold_in.astype(np.float32) @ self.W).toarray())
