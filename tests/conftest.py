"""Shared fixtures: where the real datasets are (if this checkout sits beside ../shared), and tiny splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

torch.set_num_threads(1)  # CI has 2 cores; tests stay small

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or skip when a fresh clone does not have it."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present (only in the founding team's workspace)")
    return SHARED_DATA


def random_binary(n_users: int, n_items: int, density: float, seed: int) -> sp.csr_matrix:
    """A random float32 0/1 CSR matrix."""
    m = sp.random(n_users, n_items, density=density, format="csr", dtype=np.float32, random_state=seed)
    m.data[:] = 1.0
    return m
