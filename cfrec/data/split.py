"""The five sparse matrices of Liang et al.'s protocol, and their Table 1 counts."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

PARTS: tuple[str, ...] = ("train", "val_tr", "val_te", "test_tr", "test_te")


@dataclass
class Split:
    """Training users' rows, and fold-in (`*_tr`) / held-out (`*_te`) rows of validation and test users.

    All five are `float32` CSR matrices over the same item vocabulary (the items of training users);
    row r of `val_tr` and row r of `val_te` belong to the same user.
    """

    train: sp.csr_matrix
    val_tr: sp.csr_matrix
    val_te: sp.csr_matrix
    test_tr: sp.csr_matrix
    test_te: sp.csr_matrix
    item_ids: np.ndarray = field(default_factory=lambda: np.empty(0))  # raw id of each item column
    # raw id of each row's user in train / val_* / test_* (per-user metrics and exports name users by them)
    train_user_ids: np.ndarray = field(default_factory=lambda: np.empty(0))
    val_user_ids: np.ndarray = field(default_factory=lambda: np.empty(0))
    test_user_ids: np.ndarray = field(default_factory=lambda: np.empty(0))

    def user_ids(self, stage: str) -> np.ndarray:
        """Raw user ids of the rows of `stage` ("train", "val" or "test")."""
        return getattr(self, f"{stage}_user_ids")

    @property
    def n_items(self) -> int:
        return self.train.shape[1]

    def counts(self) -> dict[str, dict[str, int]]:
        """Table 1's users / items / interactions for each part (items = vocabulary size)."""
        return {
            p: {"users": int(m.shape[0]), "items": int(m.shape[1]), "interactions": int(m.nnz)}
            for p, m in ((p, getattr(self, p)) for p in PARTS)
        }
