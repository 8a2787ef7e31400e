"""aWAE: the IMQ-kernel MMD, the L1 code penalty, shapes and gradients, overfitting a tiny matrix."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from cfrec.data.batches import RowBatches
from cfrec.models.baselines.awae import AWAE, IMQ_SCALES, imq_mmd, l1_sparsity
from tests.conftest import overfit_tiny, tiny_split


def test_mmd_matches_the_unbiased_estimator_by_hand() -> None:
    rng = np.random.default_rng(1)
    z, p = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    k = lambda a, b: sum(2 * 2 * s / (2 * 2 * s + ((a - b) ** 2).sum()) for s in IMQ_SCALES)  # noqa: E731
    pairs = [(i, j) for i, j in itertools.product(range(3), repeat=2) if i != j]
    expected = (sum(k(z[i], z[j]) + k(p[i], p[j]) for i, j in pairs) / 6
                - 2 * np.mean([k(a, b) for a in z for b in p]))
    assert np.isclose(float(imq_mmd(torch.tensor(z), torch.tensor(p))), expected)


def test_mmd_is_near_zero_for_prior_samples_and_grows_with_shift() -> None:
    g = torch.Generator().manual_seed(0)
    sample = lambda: torch.randn(200, 8, generator=g)  # noqa: E731
    mmd = [float(imq_mmd(sample() + shift, sample())) for shift in (0, 0.5, 1, 2)]
    assert abs(mmd[0]) < 0.03
    assert mmd[0] + 0.1 < mmd[1] < mmd[2] < mmd[3]


def test_l1_term_equals_hand_computation() -> None:
    assert float(l1_sparsity(torch.tensor([[1.0, -2.0, 0.0], [0.5, 0.0, -0.5]]))) == 2.0  # (3 + 1) / 2
    split = tiny_split()
    model = AWAE(n_items=split.n_items, hidden_dim=6, latent_dim=3, mmd_weight=0.7, l1_weight=0.3).eval()
    x = RowBatches(split.train)[[0, 5, 20]].x
    terms = model.loss_terms(x)
    z = model.encode(x).detach().numpy()
    assert np.isclose(float(terms["l1"]), np.abs(z).sum(1).mean())
    assert torch.isclose(terms["loss"], terms["nll"] + 0.7 * terms["mmd"] + 0.3 * terms["l1"])


def test_shapes_and_gradients() -> None:
    split = tiny_split()
    model = AWAE(n_items=split.n_items, hidden_dim=6, latent_dim=3)
    loss = model.loss_terms(RowBatches(split.train)[[1, 2, 3, 4]].x)["loss"]
    loss.backward()
    assert loss.ndim == 0 and all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert model.score(RowBatches(split.val_tr)[[0, 1]].x).shape == (2, split.n_items)


def test_overfits_tiny_matrix() -> None:
    before, after = overfit_tiny(lambda split: AWAE(n_items=split.n_items, hidden_dim=32, latent_dim=8, lr=0.01), 40)
    assert after > max(0.8, before + 0.3)
