"""Conversions between scipy CSR rows and torch sparse tensors, without per-row Python loops."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch

#: torch's notice on the first sparse CSR tensor: cfrec's batches are sparse CSR on purpose, so the tools that
#: build them (`train.py`, `python -m cfrec.rankings`, ...) do not print it
SPARSE_BETA_WARNING = r"Sparse CSR tensor support is in beta state"


def to_torch_csr(m: sp.csr_matrix) -> torch.Tensor:
    """A scipy CSR matrix as a float32 torch sparse CSR tensor sharing no Python-level loops (without torch's
    sparse-beta notice)."""
    m = m.tocsr()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", SPARSE_BETA_WARNING, UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data.astype(np.float32, copy=False)),
            size=m.shape,
            check_invariants=False,
        )


def rows(m: sp.csr_matrix, index: np.ndarray) -> torch.Tensor:
    """Rows `index` of `m` as a torch sparse CSR tensor (scipy's vectorised fancy row slicing)."""
    return to_torch_csr(m[index])


def densify(x: torch.Tensor) -> torch.Tensor:
    """Dense view of a batch that may be sparse; dense input is returned unchanged."""
    return x if x.layout == torch.strided else x.to_dense()
