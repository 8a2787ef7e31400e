"""RecVAE: the composite prior against a direct mixture, which parameters each phase moves, β_u, overfitting."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from scipy.stats import norm

from cfrec.data.batches import RowBatches
from cfrec.data.split import Split
from cfrec.models.baselines.recvae import MIXTURE_WEIGHTS, RecVAE
from tests.conftest import overfit_tiny, quiet_trainer, tiny_loaders, tiny_split


def small(split: Split, **kw: object) -> RecVAE:
    return RecVAE(n_items=split.n_items, hidden_dim=8, latent_dim=3, **kw)


def test_composite_prior_matches_a_direct_mixture() -> None:
    torch.manual_seed(0)
    split = tiny_split()
    model = small(split).double()
    x = RowBatches(split.train)[[0, 11, 30]].x.to(torch.float64)
    z = torch.randn(3, 3, dtype=torch.float64) * 3
    mu, logvar = (t.detach().numpy() for t in model.prior.old_encoder(x, 0.0))
    w1, w2, w3 = MIXTURE_WEIGHTS
    zn = z.numpy()
    density = w1 * norm.pdf(zn) + w2 * norm.pdf(zn, mu, np.exp(0.5 * logvar)) + w3 * norm.pdf(zn, 0, np.exp(5.0))
    np.testing.assert_allclose(model.prior.log_prob(z, x).numpy(), np.log(density), rtol=1e-10)


def test_kl_weight_scales_with_the_number_of_items() -> None:
    split = tiny_split()
    x = torch.tensor([[1.0, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 1]])
    model = RecVAE(n_items=4, hidden_dim=8, latent_dim=3, gamma=0.01)
    torch.testing.assert_close(model.kl_weight(x), torch.tensor([0.02, 0.04, 0.01]))
    sparse = RowBatches(split.train)[[0, 1]].x
    torch.testing.assert_close(small(split, gamma=0.5).kl_weight(sparse), torch.tensor([3.0, 3.0]))


class PhaseSnapshots(pl.Callback):
    """Parameters at epoch start (callbacks run before the module's hook), before the first decoder step, at the end."""

    def __init__(self) -> None:
        self.states: list[dict[str, torch.Tensor]] = []

    def _snap(self, module: pl.LightningModule) -> None:
        self.states.append({k: v.detach().clone() for k, v in module.state_dict().items()})

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._snap(module)

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, batch: object, idx: int) -> None:
        if idx == 0:
            self._snap(module)

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._snap(module)


def test_alternating_updates_move_only_the_intended_parameters() -> None:
    torch.manual_seed(0)
    split = tiny_split()
    train, val = tiny_loaders(split)
    snaps = PhaseSnapshots()
    quiet_trainer(1, callbacks=[snaps], limit_val_batches=0).fit(small(split), train, val)
    start, after_encoder, end = snaps.states

    def moved(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], prefix: str) -> bool:
        return any(not torch.equal(a[k], b[k]) for k in a if k.startswith(prefix))

    assert moved(start, after_encoder, "encoder.") and not moved(start, after_encoder, "decoder.")
    assert not moved(after_encoder, end, "encoder.") and moved(after_encoder, end, "decoder.")
    # q_old is refreshed to the encoder after its phase, and not by the decoder phase
    encoder = {k[len("encoder."):]: v for k, v in after_encoder.items() if k.startswith("encoder.")}
    assert all(torch.equal(after_encoder[f"prior.old_encoder.{k}"], v) for k, v in encoder.items())
    assert not moved(after_encoder, end, "prior.")


def test_shapes_and_gradients() -> None:
    split = tiny_split()
    model = small(split)
    x = RowBatches(split.train)[[1, 2, 3]].x
    model.encoder_loss(x).backward()
    assert all(p.grad is not None for p in model.encoder.parameters())
    assert all(p.grad is None for p in model.prior.parameters())
    model.zero_grad()
    model.decoder_loss(x).backward()
    assert all(p.grad is None for p in model.encoder.parameters()) and model.decoder.weight.grad.abs().sum() > 0
    assert model.score(RowBatches(split.val_tr)[[0, 1]].x).shape == (2, split.n_items)


def test_overfits_tiny_matrix() -> None:
    before, after = overfit_tiny(lambda split: RecVAE(n_items=split.n_items, hidden_dim=32, latent_dim=8, lr=0.01), 15)
    assert after > max(0.8, before + 0.3)
