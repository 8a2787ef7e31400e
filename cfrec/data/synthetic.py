"""Offline synthetic data: users drawn from a known latent-factor model with long-tailed popularity.

p(i | u) ∝ exp(s·⟨θ_u, β_i⟩ + b_i), b_i = −a·log(popularity rank of i); each user takes n_u items
without replacement (Gumbel top-k, vectorised), n_u log-normal. A model that learns θ, β beats
popularity on it, which is what `python train.py` on the default dataset should show.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def synthetic_interactions(
    n_users: int = 3000,
    n_items: int = 1000,
    n_factors: int = 10,
    mean_items: float = 40.0,
    popularity_exponent: float = 0.8,
    signal: float = 2.5,
    seed: int = 0,
) -> pd.DataFrame:
    """Interactions (user, item) of the latent-factor model above; deterministic for a seed."""
    if n_users < 1 or n_items < 2 or mean_items < 1:
        raise ValueError("synthetic data needs n_users >= 1, n_items >= 2, mean_items >= 1 "
                         f"(got {n_users}, {n_items}, {mean_items})")
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(n_users, n_factors))
    beta = rng.normal(size=(n_items, n_factors)) / np.sqrt(n_factors)
    bias = -popularity_exponent * np.log1p(rng.permutation(n_items))
    logits = signal * theta @ beta.T + bias
    keys = logits + rng.gumbel(size=logits.shape)  # Gumbel top-k = sampling without replacement
    n_u = np.clip(rng.lognormal(np.log(mean_items), 0.6, size=n_users).astype(int), 5, n_items // 2)
    order = np.argsort(-keys, axis=1)
    take = np.arange(n_items)[None, :] < n_u[:, None]
    users = np.repeat(np.arange(n_users), n_u)
    items = order[take]  # row-major: each user's first n_u items by key
    return pd.DataFrame({"user": users, "item": items, "rating": np.nan})
