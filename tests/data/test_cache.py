"""Processed-split cache: round trip, staleness, corruption detection, and no partial entries."""

import json

import numpy as np
import pandas as pd
import pytest

from cfrec.data import cache
from cfrec.data.cache import CacheError, cached_split, load_split, save_split
from cfrec.data.datamodule import prepare_split
from cfrec.data.protocol import liang_split
from cfrec.data.synthetic import synthetic_interactions
from cfrec.io import sha256_file


def small_split():
    return liang_split(synthetic_interactions(n_users=200, n_items=80, mean_items=12), threshold=None, heldout_users=20)


def test_round_trip_keeps_every_matrix_and_the_raw_ids(tmp_path):
    split = small_split()
    save_split(split, tmp_path, {"name": "x"})
    back = load_split(tmp_path)
    for part in ("train", "val_tr", "val_te", "test_tr", "test_te"):
        assert (getattr(back, part) != getattr(split, part)).nnz == 0
    for ids in ("item_ids", "train_user_ids", "val_user_ids", "test_user_ids"):
        np.testing.assert_array_equal(getattr(back, ids).astype(int), getattr(split, ids))
    assert len(split.val_user_ids) == split.val_tr.shape[0] == 20
    assert json.loads((tmp_path / "manifest.json").read_text())["counts"] == split.counts()


def test_entry_without_user_ids_is_rebuilt(tmp_path):
    split = small_split()
    save_split(split, tmp_path, {})
    npz = tmp_path / "split.npz"
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files if not k.endswith("user_ids")}
    np.savez(npz, **arrays)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["split_sha256"] = sha256_file(npz)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CacheError, match="older cfrec"):
        load_split(tmp_path)


def test_corrupted_npz_is_detected_and_rebuilt(tmp_path):
    split = small_split()
    save_split(split, tmp_path, {})
    npz = tmp_path / "split.npz"
    npz.write_bytes(npz.read_bytes()[:-10])
    with pytest.raises(CacheError, match="checksum"):
        load_split(tmp_path)
    calls = []
    rebuilt = cached_split(tmp_path, lambda: calls.append(1) or split, {})
    assert calls == [1] and rebuilt.counts() == split.counts()
    load_split(tmp_path)  # the rebuilt entry verifies


def test_interrupted_write_leaves_no_entry(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache.np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        save_split(small_split(), tmp_path, {})
    assert list(tmp_path.iterdir()) == []


def test_changed_source_file_gives_a_new_cache_entry(tmp_path):
    raw = tmp_path / "data.csv"
    frame = pd.DataFrame({"u": np.repeat(np.arange(30), 6), "i": np.tile(np.arange(6), 30)})
    frame.to_csv(raw, index=False, header=False)
    kw = dict(name="t", format="triplets", raw_path=str(raw), heldout_users=5, cache_dir=tmp_path / "cache")
    prepare_split(**kw)
    raw.write_text(raw.read_text() + "99,1\n")
    prepare_split(**kw)
    assert len([p for p in (tmp_path / "cache").iterdir() if p.name.startswith("t-")]) == 2
