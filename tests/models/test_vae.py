"""The VAE LightningModule (and Mult-DAE): the loss of Eq. 5 term by term, the parts swapped by config,
a tiny overfit, and a checkpoint written by a Trainer read back."""

import functools
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import scipy.sparse as sp
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from cfrec import reference
from cfrec.config import build_model, load_model, part_config
from cfrec.data.batches import PairBatches, RowBatches, UserBatch
from cfrec.data.sparse import to_torch_csr
from cfrec.metrics import ranking_metrics
from cfrec.models.dae import DAE
from cfrec.models.encoders import GaussianEncoder, Posterior, gaussian_log_prob
from cfrec.models.likelihoods import Logistic, Multinomial
from cfrec.models.optim import fused_adam
from cfrec.models.priors import StandardNormal, VampPrior
from cfrec.models.schedules import Anneal, Constant, Search, Zero
from cfrec.models.vae import VAE

CONF = Path(__file__).resolve().parents[2] / "conf"
N_ITEMS = 30


def clustered_rows(n_users=48, n_items=N_ITEMS, n_groups=3, seed=0) -> sp.csr_matrix:
    """Users of group g click most items of block g and a few others: a learnable 0/1 matrix."""
    rng = np.random.default_rng(seed)
    group = np.arange(n_users) % n_groups
    block = np.arange(n_items) * n_groups // n_items
    p = np.where(group[:, None] == block[None, :], 0.7, 0.03)
    x = (rng.random((n_users, n_items)) < p).astype(np.float32)
    x[np.arange(n_users), group * (n_items // n_groups)] = 1.0  # every row has a click
    return sp.csr_matrix(x)


def fold_in_split(x: sp.csr_matrix, seed=0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Each row's clicks split 70/30 into fold-in and held-out."""
    rng = np.random.default_rng(seed)
    held = x.copy()
    held.data = (rng.random(held.nnz) < 0.3).astype(np.float32)
    held.eliminate_zeros()
    return sp.csr_matrix(x - held), held


def vae_parts(prior=None, beta=None, likelihood=None, **kwargs) -> dict:
    """The tests' small VAE: its parts and settings as VAE's keyword arguments."""
    kwargs = {"decoder_hidden_dims": [16], **kwargs}
    encoder = kwargs.pop("encoder", functools.partial(GaussianEncoder, hidden_dims=[16], latent_dim=4, dropout=0.5))
    return {"encoder": encoder, "likelihood": likelihood or Multinomial(),
            "prior": prior or functools.partial(StandardNormal), "beta": beta or Anneal(cap=0.2, total_anneal_steps=10),
            **kwargs}


def make_vae(prior=None, beta=None, likelihood=None, **kwargs) -> VAE:
    torch.manual_seed(0)
    return VAE(N_ITEMS, **vae_parts(prior, beta, likelihood, **kwargs))


def built_vae(**parts) -> VAE:
    """The same VAE built from its config, as a run builds it (`cfrec.config.build_model`): its checkpoints reload."""
    torch.manual_seed(0)
    return build_model({"_target_": "cfrec.models.vae.VAE", **part_config(vae_parts(**parts))}, N_ITEMS)


X = to_torch_csr(clustered_rows()[:8])


def test_architecture_is_liangs():
    encoder = functools.partial(GaussianEncoder, hidden_dims=[600], latent_dim=200)
    model = make_vae(encoder=encoder, decoder_hidden_dims=[600])
    linear = [m for m in model.decoder if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(200, 600), (600, N_ITEMS)]
    assert isinstance(model.decoder[1], torch.nn.Tanh) and isinstance(model.decoder[-1], torch.nn.Linear)
    assert isinstance(model.configure_optimizers(), torch.optim.Adam)
    assert model.configure_optimizers().defaults["lr"] == 1e-3


def test_loss_is_eq5_with_the_closed_form_kl():
    model = make_vae()
    torch.manual_seed(1)
    terms = model.losses(X, beta=0.3)
    torch.manual_seed(1)
    post = model.encoder(X)
    recon = Multinomial().log_prob(X, model.decoder(post.z)).mean()
    kl = StandardNormal().kl_gaussian(post.mu, post.logvar).mean()
    torch.testing.assert_close(terms["recon"], recon)
    torch.testing.assert_close(terms["kl"], kl)
    torch.testing.assert_close(terms["bound"], recon - kl)
    torch.testing.assert_close(terms["loss"], -recon + 0.3 * kl)


def test_vamp_prior_uses_the_monte_carlo_kl():
    model = make_vae(prior=functools.partial(VampPrior, n_components=3)).eval()  # no dropout on the pseudo-inputs
    assert model.prior.encoder is model.encoder
    post = Posterior(z=torch.randn(4, 4), mu=torch.randn(4, 4), logvar=torch.randn(4, 4))
    expected = gaussian_log_prob(post.z, post.mu, post.logvar) - model.prior.log_prob(post.z)
    torch.testing.assert_close(model.divergence(post), expected)


def test_an_encoder_with_log_q_gets_log_q_minus_log_prior():
    class FlowLike(GaussianEncoder):
        def forward(self, x):
            post = super().forward(x)
            return Posterior(post.z, post.mu, post.logvar, log_q=torch.full((x.shape[0],), 7.0))

    model = make_vae(encoder=functools.partial(FlowLike, hidden_dims=[8], latent_dim=4))
    post = model.encoder(X)
    torch.testing.assert_close(model.divergence(post), 7.0 - StandardNormal().log_prob(post.z))


def test_zero_beta_never_computes_the_kl(monkeypatch):
    model = make_vae(beta=Zero())

    def fail(*_):
        raise AssertionError("KL computed with beta=zero")

    monkeypatch.setattr(model.prior, "kl_gaussian", fail)
    monkeypatch.setattr(model.prior, "log_prob", fail)
    terms = model.losses(X, beta=0.0)
    assert set(terms) == {"loss", "recon"}
    assert terms["loss"] == -terms["recon"]


def test_l2_adds_exactly_lambda_times_the_squared_weights():
    model = make_vae(prior=functools.partial(VampPrior, n_components=2))
    torch.manual_seed(3)
    plain = model.losses(X, beta=0.2)["loss"]
    model.l2 = 0.01
    torch.manual_seed(3)
    regularised = model.losses(X, beta=0.2)["loss"]
    weights = [m.weight for m in [*model.encoder.modules(), *model.decoder.modules()] if isinstance(m, torch.nn.Linear)]
    assert len(weights) == 4  # encoder 2, decoder 2; pseudo-inputs and biases excluded
    torch.testing.assert_close(regularised - plain, 0.01 * sum((w**2).sum() for w in weights))


def test_sparse_and_dense_rows_give_the_same_loss_and_scores():
    model = make_vae(encoder=functools.partial(GaussianEncoder, hidden_dims=[16], latent_dim=4, dropout=0.0))
    losses = []
    for x in (X, X.to_dense()):
        torch.manual_seed(5)
        losses.append(model.losses(x, beta=0.2))
    for key in ("loss", "recon", "kl"):
        torch.testing.assert_close(losses[0][key], losses[1][key])
    torch.testing.assert_close(model.score(X), model.score(X.to_dense()))


def test_training_follows_liangs_notebook_model_step_for_step():
    """Same initial weights, batches and ε draws (dropout off): 30 steps of cfrec's Mult-VAE (sparse rows,
    embedding-bag first layer, blocked multinomial, fused Adam, annealed β) track the dense transcription
    of Liang's notebook with plain Adam, loss for loss."""
    n_items, steps = 120, 30
    x = clustered_rows(n_users=60, n_items=n_items)
    encoder = functools.partial(GaussianEncoder, hidden_dims=[600], latent_dim=200, dropout=0.0)
    ours = VAE(n_items, encoder, Multinomial(), functools.partial(StandardNormal), Anneal(0.2, total_anneal_steps=10))
    ref = reference.MultVAE(n_items)  # Liang's notebook model written out densely, sharing no code with VAE
    ref.drop.p = 0.0
    pairs = [(ref.q1, ours.encoder.first), (ref.q2, ours.encoder.head),
             (ref.p1, ours.decoder[0]), (ref.p2, ours.decoder[2])]
    with torch.no_grad():
        for theirs, mine in pairs:
            theirs.weight.copy_(mine.weight)
            theirs.bias.copy_(mine.bias)
    ours_opt, ref_opt = fused_adam(ours.parameters(), lr=1e-3), torch.optim.Adam(ref.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    for step in range(steps):
        rows = x[rng.permutation(x.shape[0])[:20]]
        torch.manual_seed(step)
        loss = ours.losses(to_torch_csr(rows), ours.beta(step))["loss"]
        dense = torch.from_numpy(rows.toarray())
        torch.manual_seed(step)
        ref_loss = ref.loss(dense, min(0.2, step / 10))
        torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-4)
        for opt, value in ((ours_opt, loss), (ref_opt, ref_loss)):
            opt.zero_grad()
            value.backward()
            opt.step()
    for theirs, mine in pairs:
        torch.testing.assert_close(mine.weight, theirs.weight, rtol=0, atol=1e-4)


def test_score_is_deterministic_eval_logits_and_keeps_the_mode():
    model = make_vae().train()
    scores = model.score(X)
    assert scores.shape == (8, N_ITEMS) and not scores.requires_grad
    torch.testing.assert_close(model.score(X), scores)  # no dropout, z = mu
    assert model.encoder.training
    torch.testing.assert_close(scores, model.decoder(model.encoder.eval()(X).mu))


def test_mc_samples_average_the_terms_of_their_draws():
    model = make_vae(mc_samples=3)
    torch.manual_seed(1)
    terms = model.losses(X, beta=0.2)
    assert set(terms) == {"loss", "recon", "kl", "bound"}
    model.mc_samples = 1
    torch.manual_seed(1)  # the same three draws, one at a time
    draws = [model.losses(X, beta=0.2) for _ in range(3)]
    for name in ("recon", "kl", "loss"):
        torch.testing.assert_close(terms[name], torch.stack([d[name] for d in draws]).mean())
    assert not torch.allclose(draws[0]["recon"], draws[1]["recon"])  # the draws differ: an average, not a copy


@pytest.mark.parametrize("likelihood", [Multinomial(), Logistic()])
def test_tiny_vae_overfits_a_tiny_matrix(likelihood):
    rows = clustered_rows()
    fold_in, heldout = fold_in_split(rows)
    x, fold_in, heldout = to_torch_csr(rows), to_torch_csr(fold_in), to_torch_csr(heldout)
    model = make_vae(likelihood=likelihood, lr=1e-2)
    optimizer = model.configure_optimizers()

    def ndcg() -> float:
        return float(ranking_metrics(model.score(fold_in), fold_in, heldout)["ndcg@100"].nanmean())

    before, losses = ndcg(), []
    for step in range(150):
        loss = model.losses(x, beta=model.beta(step))["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.9 * np.mean(losses[:10])
    assert ndcg() > before + 0.2 and ndcg() > 0.8


def test_part_config_round_trips():
    parts = [
        functools.partial(GaussianEncoder, hidden_dims=(600,), latent_dim=200, dropout=0.5),
        functools.partial(VampPrior, n_components=5),
        Anneal(cap=0.1, anneal_fraction=0.5),
        Search(total_anneal_steps=10),
        Multinomial(),
    ]
    for part in parts:
        config = part_config(part)
        assert part_config(instantiate(config)) == config
    assert part_config(parts[0]) == {
        "_target_": "cfrec.models.encoders.GaussianEncoder",
        "_partial_": True,
        "hidden_dims": [600],
        "latent_dim": 200,
        "dropout": 0.5,
    }
    nested = functools.partial(GaussianEncoder, flows=[functools.partial(VampPrior, n_components=2)], prior=Zero())
    vamp = {"_target_": "cfrec.models.priors.VampPrior", "_partial_": True, "n_components": 2}
    assert part_config(nested)["flows"] == [vamp]
    assert part_config(nested)["prior"] == {"_target_": "cfrec.models.schedules.Zero"}
    with pytest.raises(TypeError):
        part_config(object())


def _loaders(rows: sp.csr_matrix, batch_size: int = 16):
    fold_in, heldout = fold_in_split(rows)
    train = RowBatches(rows)
    val = PairBatches(fold_in, heldout)
    return (
        DataLoader(train, sampler=BatchSampler(RandomSampler(train), batch_size, drop_last=False), batch_size=None),
        DataLoader(val, sampler=BatchSampler(SequentialSampler(val), batch_size, drop_last=False), batch_size=None),
    )


def _fit(model: pl.LightningModule, tmp_path: Path) -> tuple[pl.Trainer, pl.callbacks.ModelCheckpoint]:
    checkpoint = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, monitor="val/ndcg@100", mode="max", save_last=True)
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        callbacks=[checkpoint],
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, *_loaders(clustered_rows()))
    return trainer, checkpoint


def test_trainer_checkpoint_round_trip(tmp_path):
    model = built_vae(beta=Anneal(cap=1.0, anneal_fraction=0.5))
    _, checkpoint = _fit(model, tmp_path)
    assert model.beta.total_anneal_steps == 3  # 2 epochs × 3 batches of 16 users, half of it
    assert "val" in model.results
    loaded = load_model(checkpoint.best_model_path)
    assert loaded.hparams["beta"] == {
        "_target_": "cfrec.models.schedules.Anneal",
        "cap": 1.0,
        "total_anneal_steps": 200000,
        "anneal_fraction": 0.5,
    }
    best = torch.load(checkpoint.best_model_path, weights_only=True)["state_dict"]
    for name, value in loaded.state_dict().items():
        torch.testing.assert_close(value, best[name])
    model.load_state_dict(best)
    torch.testing.assert_close(loaded.score(X), model.score(X))


def test_beta_search_records_the_curve_and_vamp_checkpoint_reloads(tmp_path):
    vamp, search = functools.partial(VampPrior, n_components=3), Search(total_anneal_steps=10, max_beta=1.0)
    model = built_vae(prior=vamp, beta=search)
    trainer, checkpoint = _fit(model, tmp_path)
    trainer.validate(model, _loaders(clustered_rows())[1], ckpt_path=checkpoint.best_model_path, verbose=False)
    curve = model.results["beta_search"]
    assert curve["beta"] == pytest.approx([0.2, 0.5])  # β of each epoch's last update (steps 2, 5); no sanity point
    assert curve["ndcg@100"] == pytest.approx([model.beta.ndcgs[0], model.results["val"]["ndcg@100"]])
    assert curve["best_beta"] == curve["beta"][int(np.argmax(curve["ndcg@100"]))]
    loaded = load_model(checkpoint.last_model_path)
    assert loaded.beta.curve() == curve  # a resumed search goes on from its curve
    assert isinstance(loaded.prior, VampPrior) and loaded.prior.encoder is loaded.encoder
    saved = torch.load(checkpoint.last_model_path, weights_only=True)["state_dict"]
    torch.testing.assert_close(loaded.prior.means.weight, saved["prior.means.weight"])


@pytest.mark.parametrize(
    "overrides, likelihood, prior, beta",
    [
        ([], Multinomial, StandardNormal, Anneal),
        (["likelihood=logistic", "beta=zero"], Logistic, StandardNormal, Zero),
        (["prior=vamp", "beta=constant"], Multinomial, VampPrior, Constant),
        (["beta=search", "likelihood=gaussian", "model.l2=0.01"], "Gaussian", StandardNormal, Search),
    ],
)
def test_config_groups_build_the_vae(overrides, likelihood, prior, beta):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["model=mult", *overrides])
    model = build_model(cfg.model, N_ITEMS)
    assert isinstance(model, VAE)
    assert type(model.likelihood).__name__ == (likelihood if isinstance(likelihood, str) else likelihood.__name__)
    assert isinstance(model.prior, prior) and isinstance(model.beta, beta)
    assert model.encoder.latent_dim == 200 and model.hparams["encoder"]["hidden_dims"] == [600]
    assert model.l2 == (0.01 if "model.l2=0.01" in overrides else 0.0)


def test_dae_config_and_loss():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["model=dae"])
    model = instantiate(cfg.model, n_items=N_ITEMS)
    assert isinstance(model, DAE) and model.l2 == pytest.approx(0.01 / 500)
    assert [(m.in_features, m.out_features) for m in model.layers] == [(N_ITEMS, 200), (200, N_ITEMS)]
    torch.manual_seed(0)
    terms = model.losses(X)
    penalty = sum((m.weight**2).sum() for m in model.layers)
    torch.manual_seed(0)
    recon = Multinomial().log_prob(X, model(X)).mean()
    torch.testing.assert_close(terms["loss"], -recon + 2e-5 * penalty)
    torch.testing.assert_close(model.score(X), model.score(X.to_dense()))


def test_dae_trainer_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = DAE(N_ITEMS, hidden_dims=[16], lr=1e-2)
    _, checkpoint = _fit(model, tmp_path)
    loaded = DAE.load_from_checkpoint(checkpoint.best_model_path)
    assert loaded.hparams["hidden_dims"] == [16] and loaded.lr == 1e-2
    model.load_state_dict(torch.load(checkpoint.best_model_path, weights_only=True)["state_dict"])
    torch.testing.assert_close(loaded.score(X), model.score(X))


def test_training_step_logs_the_terms():
    model = make_vae()
    logged = {}
    model.log_dict = lambda values, **_: logged.update(values)
    loss = model.training_step(UserBatch(X, torch.arange(8)), 0)
    assert set(logged) == {"train/loss", "train/recon", "train/kl", "train/bound", "train/beta"}
    assert logged["train/beta"] == 0.0 and loss is logged["train/loss"]
