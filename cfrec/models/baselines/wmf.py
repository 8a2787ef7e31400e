"""WMF (Hu et al. 2008) by alternating least squares with `implicit`; held-out users are folded in.

Confidence: implicit reads the matrix values as Hu's confidences c_ui (0s are c = 1, p = 0). We pass
`alpha · X`, so the 1s get c = `alpha` and the 0s c = 1: `alpha` is the paper's "weight on the 1s"
({2, 5, 10, 30, 50, 100}); in Hu's notation c = 1 + α_Hu·r, α_Hu = alpha − 1. The scaling is done here,
with implicit's own `alpha` left at 1, because implicit 0.7.3's GPU `fit` ignores its `alpha`.
"""

from __future__ import annotations

import implicit.cpu.als
import implicit.gpu
import implicit.gpu.als
import numpy as np
import scipy.sparse as sp
import torch
from threadpoolctl import threadpool_limits

from cfrec.data.split import Split
from cfrec.models.base import FittedRecommender
from cfrec.run.device import resolve_device


class WMF(FittedRecommender):
    """Scores = U Vᵀ, U solved exactly for each fold-in row against the trained item factors V."""

    def __init__(
        self,
        n_items: int,
        factors: int = 100,
        alpha: float = 10.0,
        regularization: float = 10.0,
        iterations: int = 15,
        device: str = "auto",
        num_threads: int = 0,
        random_state: int = 98765,
    ) -> None:
        if alpha < 1:
            raise ValueError(f"WMF alpha is the confidence on the 1s and must be >= 1 (the 0s have 1); got {alpha}")
        self.n_items = n_items
        self.factors, self.alpha = factors, float(alpha)
        self.regularization, self.iterations = float(regularization), iterations
        self.use_gpu = resolve_device(device).type == "cuda" and implicit.gpu.HAS_CUDA
        self.num_threads = num_threads
        self.random_state = random_state
        self.chosen = {}

    def fit(self, split: Split) -> WMF:
        """ALS on the training rows (BLAS held to one thread; implicit parallelises over users)."""
        common = {
            "factors": self.factors,
            "regularization": self.regularization,
            "iterations": self.iterations,
            "random_state": self.random_state,
        }
        with threadpool_limits(1, "blas"):
            if self.use_gpu:
                als = implicit.gpu.als.AlternatingLeastSquares(**common)
            else:
                als = implicit.cpu.als.AlternatingLeastSquares(**common, num_threads=self.num_threads)
            als.fit(self.alpha * split.train.tocsr(), show_progress=False)
        self.als = als.to_cpu() if self.use_gpu else als
        self.item_factors = torch.from_numpy(self.als.item_factors)
        self.chosen = {
            "factors": self.factors,
            "alpha": self.alpha,
            "regularization": self.regularization,
            "iterations": self.iterations,
        }
        return self

    def fold_in(self, fold_in: sp.csr_matrix) -> np.ndarray:
        """Factors argmin_u Σ_i c_ui (x_ui − uᵀv_i)² + λ‖u‖², V fixed (implicit's exact Cholesky solve)."""
        with threadpool_limits(1, "blas"):
            return self.als.recalculate_user(np.arange(fold_in.shape[0]), self.alpha * fold_in.tocsr())

    def score(self, fold_in: sp.csr_matrix) -> torch.Tensor:
        """U Vᵀ for the folded-in users."""
        return torch.from_numpy(self.fold_in(fold_in)) @ self.item_factors.T
