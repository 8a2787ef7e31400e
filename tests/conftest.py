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


def posteriors_fp32_and_bf16(encoder: torch.nn.Module, seed: int, n_items: int = 40):
    """An encoder's posterior on a small random batch in fp32 and under CPU bf16 autocast, with the same draws."""
    torch.manual_seed(seed)
    x = (torch.rand(6, n_items) < 0.3).float()
    x[:, 0] = 1.0
    torch.manual_seed(seed + 1)
    fp32 = encoder(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.manual_seed(seed + 1)
        bf16 = encoder(x)
    return fp32, bf16
