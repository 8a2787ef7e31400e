"""The fast paths give what the plain ones give: the item-major embedding-bag first layer, the fused Adam,
the VAE's bf16 CPU decoder layout, and bf16 scoring through the metrics (benchmarks/ times them)."""

import functools
from copy import deepcopy

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from cfrec.data.sparse import to_torch_csr
from cfrec.metrics import ranking_metrics
from cfrec.models.encoders import GaussianEncoder, SparseInput
from cfrec.models.likelihoods import Multinomial
from cfrec.models.optim import fused_adam
from cfrec.models.priors import StandardNormal
from cfrec.models.schedules import Anneal
from cfrec.models.vae import VAE
from tests.conftest import TINY_MODEL, compose_train, random_binary

N_ITEMS = 40


def _rows(n=12, seed=0):
    return to_torch_csr(random_binary(n, N_ITEMS, 0.2, seed=seed))


def _vae(**kwargs):
    torch.manual_seed(0)
    encoder = functools.partial(GaussianEncoder, hidden_dims=[16], latent_dim=4, dropout=0.0)
    return VAE(N_ITEMS, encoder=encoder, likelihood=Multinomial(), prior=functools.partial(StandardNormal),
               beta=Anneal(cap=0.2, total_anneal_steps=10), decoder_hidden_dims=[16], **kwargs)


def test_sparse_input_layer_matches_dense_in_value_and_gradient():
    torch.manual_seed(0)
    layer = SparseInput(N_ITEMS, 7)
    assert layer.weight.t().is_contiguous() and layer.weight.shape == (7, N_ITEMS)
    x = _rows()
    g = torch.randn(x.shape[0], 7)
    layer(x).backward(g)
    sparse_grad = (layer.weight.grad.clone(), layer.bias.grad.clone())
    layer.zero_grad()
    layer(x.to_dense()).backward(g)
    torch.testing.assert_close(sparse_grad[0], layer.weight.grad)
    torch.testing.assert_close(sparse_grad[1], layer.bias.grad)
    assert layer.weight.grad.stride() == layer.weight.stride()  # accumulated without a transposing copy


def test_sparse_input_keeps_a_linear_layers_values_and_state_dict():
    torch.manual_seed(0)
    before = {k: v.clone() for k, v in torch.nn.Linear(N_ITEMS, 5).state_dict().items()}
    torch.manual_seed(0)
    after = SparseInput(N_ITEMS, 5).state_dict()  # same initial values, drawn from the same generator state
    assert after.keys() == before.keys()
    for k in before:
        assert torch.equal(after[k], before[k])
    fresh = SparseInput(N_ITEMS, 5)
    fresh.load_state_dict(before)  # a row-major checkpoint loads into the item-major layout
    torch.testing.assert_close(fresh.weight, before["weight"])
    assert fresh.weight.t().is_contiguous()


#: the parameter each model's I-wide first layer has always been saved under (checkpoints rely on the names)
SPARSE_INPUTS = {"mult": "encoder.first", "iaf": "encoder.first", "sivae": "encoder.first", "dae": "layers.0",
                 "awae": "enc_hidden", "cdae": "encoder", "recvae": "encoder.layers.0"}


@pytest.mark.parametrize("model", sorted(SPARSE_INPUTS))
def test_every_i_wide_first_layer_is_a_sparse_input_under_its_old_name(model):
    cfg = compose_train(f"model={model}", *TINY_MODEL[model])
    net = instantiate(cfg.model, n_items=N_ITEMS, _convert_="all", **({"n_users": 3} if model == "cdae" else {}))
    layers = {name for name, m in net.named_modules() if isinstance(m, SparseInput)}
    assert layers - {"prior.old_encoder.layers.0"} == {SPARSE_INPUTS[model]}  # RecVAE's prior holds a copy
    first = net.get_submodule(SPARSE_INPUTS[model])
    assert first.weight.t().is_contiguous() and first.weight.shape[1] == N_ITEMS
    old = {k: v.contiguous() for k, v in net.state_dict().items()}  # as a row-major nn.Linear saved it
    assert f"{SPARSE_INPUTS[model]}.weight" in old
    net.load_state_dict(old)
    assert first.weight.t().is_contiguous()


def test_fused_adam_matches_default_adam_on_item_major_parameters():
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(N_ITEMS, 6).t()), torch.nn.Parameter(torch.randn(6))]
    twins = [torch.nn.Parameter(p.detach().clone()) for p in params]
    fused, plain = fused_adam(params, lr=1e-2), torch.optim.Adam(twins, lr=1e-2)
    for step in range(5):
        for p, q in zip(params, twins):
            p.grad = torch.full_like(p, 0.1 * (step + 1)) + torch.arange(p.numel()).reshape(p.shape) * 1e-3
            q.grad = p.grad.clone()
        fused.step()
        plain.step()
    for p, q in zip(params, twins):
        torch.testing.assert_close(p, q)


def test_bf16_decode_is_the_decoder_in_another_layout():
    model = _vae()
    z = torch.randn(9, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast, plain = model.decode(z), model.decoder(z)
    assert fast.shape == plain.shape == (9, N_ITEMS)
    assert fast.t().is_contiguous()  # item-major logits
    torch.testing.assert_close(fast.float(), plain.float(), rtol=0.02, atol=0.02)
    torch.testing.assert_close(model.decode(z), model.decoder(z))  # fp32: the decoder itself


def test_bf16_training_step_tracks_fp32():
    """Loss terms and gradients of a step under CPU bf16 autocast stay close to fp32 (same draws)."""
    x = _rows(16)
    grads = {}
    for precision in ("fp32", "bf16"):
        model = _vae()
        torch.manual_seed(1)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            terms = model.losses(x, beta=0.2)
        terms["loss"].backward()
        grads[precision] = (terms, {n: p.grad.clone() for n, p in model.named_parameters()})
    (t32, g32), (t16, g16) = grads["fp32"], grads["bf16"]
    for k in ("loss", "recon", "kl"):
        torch.testing.assert_close(t16[k].float(), t32[k], rtol=0.02, atol=0.02)
    for name in g32:
        rel = (g16[name] - g32[name]).norm() / g32[name].norm().clamp_min(1e-12)
        assert rel < 0.05, name


def test_bf16_scores_keep_the_metrics_on_a_small_case():
    """Scoring under bf16 autocast (trainer.precision=bf16-mixed) ranks as fp32 does, up to near-ties."""
    model = _vae().eval()
    fold_in, heldout = _rows(64, seed=1), _rows(64, seed=2)
    fp32 = ranking_metrics(model.score(fold_in), fold_in, heldout)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = ranking_metrics(model.score(fold_in), fold_in, heldout)
    for name in fp32:
        a, b = fp32[name].nanmean().item(), bf16[name].nanmean().item()
        assert abs(a - b) < 0.03, (name, a, b)


def test_sparse_and_dense_rows_give_the_same_metrics():
    rng = np.random.default_rng(0)
    heldout = random_binary(30, 300, 0.05, seed=4)
    fold_in = random_binary(30, 300, 0.1, seed=5)
    fold_in = fold_in - fold_in.multiply(heldout)
    fold_in.eliminate_zeros()
    scores = torch.tensor(rng.normal(size=(30, 300)), dtype=torch.float32)
    dense = ranking_metrics(scores.clone(), torch.tensor(fold_in.toarray()), torch.tensor(heldout.toarray()))
    sparse = ranking_metrics(scores.clone(), to_torch_csr(fold_in), to_torch_csr(heldout))
    for name in dense:
        torch.testing.assert_close(dense[name], sparse[name], equal_nan=True)


def _item_major_params(seed=0):
    torch.manual_seed(seed)
    first = SparseInput(N_ITEMS, 7)
    out = torch.nn.Linear(7, N_ITEMS)
    return [first.weight, first.bias, out.weight, out.bias]


def _steps(params, opt, n=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        opt.zero_grad()
        loss = sum((p * torch.randn(p.shape, generator=g)).sum() ** 2 for p in params)
        loss.backward()
        opt.step()


def test_fused_adam_steps_item_major_parameters_in_place_to_the_same_bits():
    ours, plain = _item_major_params(), _item_major_params()
    opt = fused_adam(ours, lr=1e-2, weight_decay=0.01)
    _steps(ours, opt)
    _steps(plain, torch.optim.Adam(plain, lr=1e-2, weight_decay=0.01, fused=True))
    for a, b in zip(ours, plain):
        assert torch.equal(a, b) and a.stride() == b.stride()  # same values, still item-major
    opt.zero_grad()
    assert all(p.grad is None for p in ours)


def test_fused_adam_state_dict_keeps_the_parameters_shapes_and_resumes_exactly():
    ours, plain = _item_major_params(), _item_major_params()
    opt, ref = fused_adam(ours, lr=1e-2), torch.optim.Adam(plain, lr=1e-2, fused=True)
    _steps(ours, opt, 3)
    _steps(plain, ref, 3)
    saved, saved_ref = opt.state_dict(), ref.state_dict()
    for i, p in enumerate(plain):
        for key in ("exp_avg", "exp_avg_sq"):
            assert saved["state"][i][key].shape == p.shape
            assert torch.equal(saved["state"][i][key], saved_ref["state"][i][key])
    # a fresh optimiser loading either state dict (ours, or plain Adam's as older checkpoints hold) goes on identically
    for state in (saved, saved_ref):
        copy = [p.detach().clone() for p in ours]
        copy[0] = torch.nn.Parameter(ours[0].detach().t().contiguous().t())
        copy = [c if isinstance(c, torch.nn.Parameter) else torch.nn.Parameter(c) for c in copy]
        resumed = fused_adam(copy, lr=1e-2)
        resumed.load_state_dict(deepcopy(state))  # as from a checkpoint file: no tensors shared with the others
        _steps(copy, resumed, 2, seed=7)
        reference = [torch.nn.Parameter(p.detach().clone()) for p in plain]
        reference[0] = torch.nn.Parameter(plain[0].detach().t().contiguous().t())
        ref2 = torch.optim.Adam(reference, lr=1e-2, fused=True)
        ref2.load_state_dict(deepcopy(saved_ref))
        _steps(reference, ref2, 2, seed=7)
        for a, b in zip(copy, reference):
            assert torch.equal(a, b)
