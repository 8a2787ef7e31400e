"""Shared fixtures and helpers: where the real datasets are (if this checkout sits beside ../shared), tiny splits,
and composing conf/train.yaml at debug size (conf/debug/) for tests that train."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from cfrec.config import CONFIG_DIR

torch.set_num_threads(1)  # CI has 2 cores; tests stay small

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Small networks and budgets per model (conf/model/<name>.yaml) that run in about a second under debug=default;
# tests/test_every_config.py requires an entry for every model file.
TINY_MODEL: dict[str, list[str]] = {
    "mult": ["debug=vae"],
    "iaf": ["debug=vae", "model.encoder.made_hidden=16"],  # a multiple of debug=vae's latent_dim 8
    "sivae": ["debug=vae", "model.encoder.noise_dims=[4]", "model.encoder.layer_dim=16"],
    "dae": ["model.hidden_dims=[32]"],
    "cdae": ["model.latent_dim=8", "model.foldin_steps=5"],
    "awae": ["model.hidden_dim=32", "model.latent_dim=8"],
    "recvae": ["model.hidden_dim=32", "model.latent_dim=8"],
    "ease": ["model.lambdas=[100]"],
    "slim": ["model.n_jobs=1"],
    "wmf": ["model.factors=8", "model.iterations=2", "model.num_threads=1"],
    "popularity": [],
}


def compose_train(*overrides: str, out: Path | None = None, cache: Path | None = None, debug: bool = True,
                  hydra: bool = False) -> DictConfig:
    """conf/train.yaml composed with `overrides`; at debug size (conf/debug/default.yaml: tiny synthetic data, one
    epoch, no logger) unless `debug=False` or the overrides pick a debug option themselves (`debug=vae`).
    `out` and `cache` set paths.output_dir and paths.cache_dir (before the overrides, which win)."""
    paths = ([f"paths.output_dir={out}"] if out is not None else []) + (
        [f"paths.cache_dir={cache}"] if cache is not None else [])
    tiny = ["debug=default"] if debug and not any(o.startswith("debug=") for o in overrides) else []
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=[*paths, *tiny, *overrides], return_hydra_config=hydra)


def row_model(row: str) -> str:
    """The model a row selects (`- override /model: <name>` in its defaults list)."""
    defaults = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "row" / f"{row}.yaml").get("defaults", []))
    [model] = [d["override /model"] for d in defaults if isinstance(d, dict) and "override /model" in d]
    return model


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
