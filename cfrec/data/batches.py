"""Batches handed to models: training rows with their user indices, and (fold-in, held-out) pairs."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import Dataset, Sampler

from cfrec.data.sparse import rows


class UserBatch(NamedTuple):
    """Training batch: `x` the users' rows (torch sparse CSR, B × I), `users` their row indices (B,)."""

    x: torch.Tensor
    users: torch.Tensor


class EvalBatch(NamedTuple):
    """Validation/test batch: fold-in rows (model input) and held-out rows (targets), both sparse CSR,
    and the users' row indices in the split (per-user metrics are written under the users' ids)."""

    fold_in: torch.Tensor
    heldout: torch.Tensor
    users: torch.Tensor | None = None


class RowBatches(Dataset):
    """Indexed by a list of row numbers (from a BatchSampler): one CSR slice per batch, no per-row loop."""

    def __init__(self, matrix: sp.csr_matrix):
        self.matrix = matrix

    def __len__(self) -> int:
        return self.matrix.shape[0]

    def __getitem__(self, index: np.ndarray) -> UserBatch:
        idx = np.asarray(index, dtype=np.int64)
        return UserBatch(rows(self.matrix, idx), torch.from_numpy(idx))


class PairBatches(Dataset):
    """Aligned (fold-in, held-out) rows of validation or test users."""

    def __init__(self, fold_in: sp.csr_matrix, heldout: sp.csr_matrix):
        if fold_in.shape != heldout.shape:
            raise ValueError(f"fold-in {fold_in.shape} and held-out {heldout.shape} matrices differ in shape")
        self.fold_in, self.heldout = fold_in, heldout

    def __len__(self) -> int:
        return self.fold_in.shape[0]

    def __getitem__(self, index: np.ndarray) -> EvalBatch:
        idx = np.asarray(index, dtype=np.int64)
        return EvalBatch(rows(self.fold_in, idx), rows(self.heldout, idx), torch.from_numpy(idx))


class ShuffledBatches(Sampler[np.ndarray]):
    """Index lists of a fresh permutation per epoch, a function of (seed, epoch) only.

    Lightning calls `set_epoch` before each epoch (and `CFDataModule.train_dataloader` sets the epoch
    a resumed run starts at), so a resumed run sees the same batches as an uninterrupted one. Under
    DDP rank r of `world` takes batches r, r+world, ... of the same permutation, and every rank takes
    the same number of batches (the < `world` batches left over are skipped that epoch).
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, 0
        self.rank, self.world = rank, world

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.n // self.batch_size) // self.world

    def __iter__(self):
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        stride = self.world * self.batch_size
        starts = range(self.rank * self.batch_size, len(self) * stride, stride)
        return iter([order[i : i + self.batch_size] for i in starts])


class OrderedBatches(Sampler[np.ndarray]):
    """Consecutive index lists 0..n-1 (evaluation order); under DDP rank r takes batches r, r+world, ..."""

    def __init__(self, n: int, batch_size: int, rank: int = 0, world: int = 1):
        batch_size = min(batch_size, max(1, -(-n // world)))  # every rank gets at least one batch
        self.n, self.batch_size, self.rank, self.world = n, batch_size, rank, world

    def __len__(self) -> int:
        return len(range(self.rank, -(-self.n // self.batch_size), self.world))

    def __iter__(self):
        starts = range(self.rank * self.batch_size, self.n, self.world * self.batch_size)
        return iter([np.arange(i, min(i + self.batch_size, self.n)) for i in starts])
