"""The Gaussian encoder and its helpers: sparse rows give what dense rows give; Liang's input pipeline."""

import torch
import torch.nn.functional as F

from cfrec.models.encoders import GaussianEncoder, SparseInput, l2_normalize, sparse_dropout, xavier_init


def _rows(seed=0, shape=(5, 12)):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(shape, generator=g) < 0.3).float()
    x[0] = 0.0  # an empty row stays zero
    return x


def test_l2_normalize_sparse_equals_dense():
    x = _rows() * torch.arange(1, 13)  # counts, unequal
    got = l2_normalize(x.to_sparse_csr())
    assert got.layout == torch.sparse_csr
    torch.testing.assert_close(got.to_dense(), F.normalize(x, dim=1))


def test_sparse_input_sparse_equals_dense():
    layer = SparseInput(12, 4)
    x = _rows()
    torch.testing.assert_close(layer(x.to_sparse_csr()), layer(x))
    torch.testing.assert_close(layer(x.to_sparse_coo()), layer(x))


def test_sparse_dropout_keeps_zeros_and_rescales_survivors():
    x = _rows(shape=(50, 40))
    torch.manual_seed(0)
    dropped = sparse_dropout(x.to_sparse_csr(), 0.5, training=True).to_dense()
    assert torch.all(dropped[x == 0] == 0)
    assert set(dropped[x > 0].unique().tolist()) <= {0.0, 2.0}
    assert 0.35 < float((dropped[x > 0] > 0).float().mean()) < 0.65
    assert sparse_dropout(x, 0.5, training=False) is x


def test_gaussian_encoder_sparse_equals_dense_in_eval():
    torch.manual_seed(0)
    encoder = GaussianEncoder(12, hidden_dims=[6], latent_dim=3).eval()
    x = _rows()
    dense, sparse = encoder(x), encoder(x.to_sparse_csr())
    torch.testing.assert_close(sparse.mu, dense.mu)
    torch.testing.assert_close(sparse.logvar, dense.logvar)
    torch.testing.assert_close(dense.z, dense.mu)  # eval: z is the mean
    assert dense.log_q is None


def test_gaussian_encoder_samples_in_training():
    torch.manual_seed(0)
    encoder = GaussianEncoder(12, hidden_dims=[6], latent_dim=3, dropout=0.0).train()
    post = encoder(_rows())
    assert post.z.shape == post.mu.shape == (5, 3)
    assert not torch.allclose(post.z, post.mu)


def test_xavier_init_is_liangs():
    layer = torch.nn.Linear(300, 200)
    xavier_init(layer)
    bound, largest = (6 / 500) ** 0.5, layer.weight.detach().abs().max().item()
    assert 0.9 * bound < largest <= bound
    assert layer.bias.detach().std().item() < 0.01


def test_sparse_first_layer_runs_in_fp32_under_bf16_autocast():
    torch.manual_seed(0)
    encoder = GaussianEncoder(12, hidden_dims=[6], latent_dim=3).eval()
    x = _rows()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        first = encoder.first(x.to_sparse_csr())
        post = encoder(x.to_sparse_csr())
    assert first.dtype == torch.float32
    torch.testing.assert_close(first, encoder.first(x))
    torch.testing.assert_close(post.mu.float(), encoder(x).mu, atol=0.05, rtol=0.05)
