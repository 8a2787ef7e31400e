"""Popularity: every user gets the training item counts as scores."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from cfrec.data.split import Split
from cfrec.models.base import FittedRecommender


class Popularity(FittedRecommender):
    """Score of item i = number of training users who clicked i (the same for every user)."""

    def __init__(self, n_items: int) -> None:
        self.n_items = n_items
        self.counts = torch.zeros(n_items)
        self.chosen = {}

    def fit(self, split: Split) -> Popularity:
        """Count each item's training users."""
        self.counts = torch.from_numpy(np.asarray(split.train.sum(axis=0), dtype=np.float32).ravel())
        return self

    def score(self, fold_in: sp.csr_matrix) -> torch.Tensor:
        """The count vector repeated for each row (a fresh tensor: the metrics write into it)."""
        return self.counts.repeat(fold_in.shape[0], 1)
