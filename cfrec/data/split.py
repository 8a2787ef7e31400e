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
    row r of `val_tr` and row r of `val_te` belong to the same user. `item_ids` holds the raw id of each
    column, `train_users` / `val_users` / `test_users` the raw id of each row of those parts (empty for a
    split built by hand without them).
    """

    train: sp.csr_matrix
    val_tr: sp.csr_matrix
    val_te: sp.csr_matrix
    test_tr: sp.csr_matrix
    test_te: sp.csr_matrix
    item_ids: np.ndarray = field(default_factory=lambda: np.empty(0))  # raw id of each item column
    train_users: np.ndarray = field(default_factory=lambda: np.empty(0))  # raw id of each row of train
    val_users: np.ndarray = field(default_factory=lambda: np.empty(0))  # ... of val_tr / val_te
    test_users: np.ndarray = field(default_factory=lambda: np.empty(0))  # ... of test_tr / test_te

    @property
    def n_items(self) -> int:
        return self.train.shape[1]

    def user_ids(self, users: str) -> np.ndarray:
        """Raw ids (as strings) of the rows of `users` ("train", "val" or "test"), one per row."""
        ids = getattr(self, f"{users}_users")
        rows = getattr(self, "train" if users == "train" else f"{users}_tr").shape[0]
        if len(ids) != rows:
            raise ValueError(f"this split has no raw ids for its {rows} {users} users (built by hand, or "
                             "cached by an older cfrec: delete its data_cache entry to rebuild it)")
        return np.asarray(ids).astype(str)

    def raw_item_ids(self) -> np.ndarray:
        """Raw ids (as strings) of the item columns."""
        if len(self.item_ids) != self.n_items:
            raise ValueError(f"this split has no raw ids for its {self.n_items} items (built by hand)")
        return np.asarray(self.item_ids).astype(str)

    def counts(self) -> dict[str, dict[str, int]]:
        """Table 1's users / items / interactions for each part (items = vocabulary size)."""
        return {
            p: {"users": int(m.shape[0]), "items": int(m.shape[1]), "interactions": int(m.nnz)}
            for p, m in ((p, getattr(self, p)) for p in PARTS)
        }
