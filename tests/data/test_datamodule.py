"""CFDataModule batches: sparse rows, shuffling as a function of (seed, epoch), aligned eval pairs; where a
relative `dataset.raw_path` is looked for."""

import numpy as np
import pytest
import torch

from cfrec.data import CFDataModule
from cfrec.data.batches import ShuffledBatches
from cfrec.errors import MissingDataError


def make_dm(tmp_path, **kw):
    dm = CFDataModule(name="synthetic", format="synthetic", heldout_users=30, cache_dir=tmp_path, batch_size=64,
                      eval_batch_size=25, synthetic={"n_users": 300, "n_items": 90, "mean_items": 12}, **kw)
    dm.setup()
    return dm


def test_training_batches_cover_every_user_once_per_epoch_as_sparse_rows(tmp_path):
    dm = make_dm(tmp_path)
    batches = list(dm.train_dataloader())
    users = torch.cat([b.users for b in batches])
    assert sorted(users.tolist()) == list(range(dm.split.train.shape[0]))
    b = batches[0]
    assert b.x.layout == torch.sparse_csr and b.x.shape == (64, dm.n_items)
    np.testing.assert_array_equal(b.x.to_dense().numpy(), dm.split.train[b.users.numpy()].toarray())


def test_shuffle_depends_only_on_seed_and_epoch():
    a, b = ShuffledBatches(100, 30, seed=1), ShuffledBatches(100, 30, seed=1)
    b.set_epoch(1)
    first = [x.tolist() for x in a]
    assert first != [x.tolist() for x in b]
    a.set_epoch(1)
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    assert len(a) == 4 and sum(len(x) for x in a) == 100


def test_eval_batches_pair_fold_in_and_heldout_rows_in_order(tmp_path):
    dm = make_dm(tmp_path)
    fold_in = torch.cat([b.fold_in.to_dense() for b in dm.val_dataloader()])
    heldout = torch.cat([b.heldout.to_dense() for b in dm.test_dataloader()])
    np.testing.assert_array_equal(fold_in.numpy(), dm.split.val_tr.toarray())
    np.testing.assert_array_equal(heldout.numpy(), dm.split.test_te.toarray())


def test_a_relative_raw_path_is_looked_up_under_cfrec_data_dir(tmp_path, monkeypatch):
    """`dataset.raw_path=mine/ratings.csv`: the current directory first, then `$CFREC_DATA_DIR` (where the presets'
    raw files live); a file in neither is named with both places."""
    data = tmp_path / "data" / "mine" / "ratings.csv"
    data.parent.mkdir(parents=True)
    data.write_text("".join(f"u{u},i{(u * 7 + k) % 40}\n" for u in range(60) for k in range(8)))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("CFREC_DATA_DIR", str(tmp_path / "data"))
    options = dict(name="custom", format="triplets", heldout_users=10, cache_dir=tmp_path / "cache")
    dm = CFDataModule(raw_path="mine/ratings.csv", **options)
    dm.setup()
    assert dm.split.counts()["train"]["users"] == 40
    with pytest.raises(MissingDataError) as error:
        CFDataModule(raw_path="mine/absent.csv", **options).setup()
    assert "mine/absent.csv does not exist" in str(error.value)
    assert f"current directory {tmp_path / 'work'}, then under CFREC_DATA_DIR={tmp_path / 'data'}" in str(error.value)
