"""The models the benchmarks time: cfrec's own (built without Hydra) and the plain-PyTorch baseline.

`mult_vae` builds `cfrec.models.vae.VAE` from its parts as Python objects, the way Hydra's recursive
instantiate would from conf/model/mult.yaml (600-200-600, dropout 0.5, multinomial, N(0, I), β annealed).
The model files import torch alone, so this works on a bare torch + lightning GPU box; without scipy or pandas,
`allow_missing_data_libs()` first lets `cfrec.data.batches` load on its own.

The straightforward implementation the speed targets compare against is `cfrec.reference.MultVAE` (Liang's
notebook model: dense first layer, log-softmax over all items, fp32), fed dense user rows from a DataLoader
(`DenseRows`, default collate).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import torch


def _stub(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = []  # a package, so submodules resolve
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


def allow_missing_data_libs() -> list[str]:
    """Make `cfrec.models.*` importable on a machine with torch + lightning (+ numpy) only; returns what was
    stood in for. Without scipy or pandas, `cfrec.data` is registered as a bare package so that
    `cfrec.data.batches` loads without `cfrec/data/__init__.py` (which imports the data module, the readers and
    pandas), and scipy.sparse gets an inert module (only used at run time by the CSR helpers the benchmarks then
    do not call)."""
    stubbed = []

    class _Missing:
        def __init__(self, *a, **k):
            raise ImportError("not installed on this machine")

    missing_data_libs = [n for n in ("scipy", "pandas") if importlib.util.find_spec(n) is None]
    if missing_data_libs and "cfrec.data" not in sys.modules:
        stubbed.append("cfrec.data (bare package)")
        import cfrec

        _stub("cfrec.data", __path__=[str(Path(cfrec.__file__).parent / "data")])
    if "scipy" in missing_data_libs:
        stubbed.append("scipy")
        scipy = _stub("scipy")
        scipy.sparse = _stub("scipy.sparse", csr_matrix=_Missing)
    return stubbed


def mult_vae(n_items: int, encoder: str = "gaussian", **vae_kwargs):
    """cfrec's Mult-VAE (or the VAE with SIVAE's encoder, paper defaults) for `n_items` items."""
    allow_missing_data_libs()
    from cfrec.models.encoders import GaussianEncoder
    from cfrec.models.likelihoods import Multinomial
    from cfrec.models.priors import StandardNormal
    from cfrec.models.schedules import Anneal
    from cfrec.models.vae import VAE

    if encoder == "gaussian":
        enc = functools.partial(GaussianEncoder, hidden_dims=[600], latent_dim=200, dropout=0.5)
    elif encoder == "sivae":
        from cfrec.models.sivae import SemiImplicitEncoder

        enc = functools.partial(SemiImplicitEncoder, hidden_dims=[600], latent_dim=200)
    else:
        raise ValueError(encoder)
    return VAE(n_items, encoder=enc, likelihood=Multinomial(), prior=functools.partial(StandardNormal),
               beta=Anneal(cap=0.2, total_anneal_steps=200_000), decoder_hidden_dims=[600], **vae_kwargs)


class DenseRows(torch.utils.data.Dataset):
    """One dense float32 row per user (what a DataLoader with the default collate stacks into a batch)."""

    def __init__(self, rows):
        self.rows = rows  # benchmarks.common.SparseRows

    def __len__(self) -> int:
        return self.rows.shape[0]

    def __getitem__(self, u: int) -> torch.Tensor:
        out = torch.zeros(self.rows.shape[1])
        lo, hi = self.rows.indptr[u], self.rows.indptr[u + 1]
        out[torch.from_numpy(self.rows.indices[lo:hi].astype(np.int64))] = 1.0
        return out
