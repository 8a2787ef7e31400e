"""Shared fixtures and helpers: where the real datasets are (if this checkout sits beside ../shared), tiny splits and
their loaders, a quiet CPU trainer, a split cache per test module, and composing conf/train.yaml at debug size
(conf/debug/) for tests that train."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import scipy.sparse as sp
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from cfrec.config import CONFIG_DIR
from cfrec.data.batches import PairBatches, RowBatches
from cfrec.data.split import Split

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


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A processed-split cache shared by the tests of one module (each split is built once per file)."""
    return tmp_path_factory.mktemp("cache")


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


GROUPS, USERS_PER_GROUP, ITEMS_PER_GROUP = 4, 10, 8


def tiny_split() -> Split:
    """40 users in 4 taste groups of 8 items, 6 items each; validation = the same users, 4 items in, 2 held out."""
    rng = np.random.default_rng(0)
    rows = [g * ITEMS_PER_GROUP + rng.choice(ITEMS_PER_GROUP, 6, replace=False)
            for g in range(GROUPS) for _ in range(USERS_PER_GROUP)]

    def csr(cols: list[np.ndarray]) -> sp.csr_matrix:
        r = np.repeat(np.arange(len(cols)), [len(c) for c in cols])
        shape = (len(cols), GROUPS * ITEMS_PER_GROUP)
        return sp.csr_matrix((np.ones(len(r), np.float32), (r, np.concatenate(cols))), shape=shape)

    train, fold_in, heldout = csr(rows), csr([c[:4] for c in rows]), csr([c[4:] for c in rows])
    return Split(train, fold_in, heldout, fold_in, heldout)


def tiny_loaders(split: Split) -> tuple[DataLoader, DataLoader]:
    """Shuffled training batches of 10 users; one validation batch."""
    rows, pairs = RowBatches(split.train), PairBatches(split.val_tr, split.val_te)
    train = DataLoader(rows, sampler=BatchSampler(RandomSampler(rows), 10, drop_last=False), batch_size=None)
    val = DataLoader(pairs, sampler=BatchSampler(SequentialSampler(pairs), 64, drop_last=False), batch_size=None)
    return train, val


def quiet_trainer(epochs: int, **kw: object) -> pl.Trainer:
    """A CPU trainer without logger, checkpoints, progress bar, model summary or sanity check (`kw` adds options)."""
    return pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, **kw)


def overfit_tiny(make: Callable[[Split], pl.LightningModule], epochs: int) -> tuple[float, float]:
    """Validation NDCG@100 of `make(tiny_split())` before training and after `epochs` epochs (seed 0): a model
    that learns at all should nearly memorise the taste groups."""
    torch.manual_seed(0)
    split = tiny_split()
    train, val = tiny_loaders(split)
    model = make(split)
    before = quiet_trainer(1).validate(model, val, verbose=False)[0]["val/ndcg@100"]
    quiet_trainer(epochs).fit(model, train, val)
    return before, model.results["val"]["ndcg@100"]
