"""Liang et al.'s split against the reference notebook's pandas code, transcribed line by line in cfrec.reference."""

import numpy as np
import pandas as pd
import pytest

from cfrec.data.protocol import ProtocolError, liang_split
from cfrec.reference import notebook_split


@pytest.fixture
def ratings():
    """400 users with 3-60 ratings each over 150 items, ratings 1-5, shuffled row order."""
    rng = np.random.default_rng(7)
    rows = []
    for u in rng.permutation(1000)[:400] + 10:
        items = rng.choice(150, size=rng.integers(3, 60), replace=False)
        rows += [(u, i * 3 + 1, float(rng.integers(1, 6))) for i in items]
    df = pd.DataFrame(rows, columns=["user", "item", "rating"])
    return df.sample(frac=1.0, random_state=3).reset_index(drop=True)


def test_split_equals_the_reference_notebook(ratings):
    expected, unique_sid, users = notebook_split(ratings, n_heldout=40)
    split = liang_split(ratings, threshold=3.5, min_user_items=5, heldout_users=40, seed=98765)
    np.testing.assert_array_equal(split.item_ids, unique_sid)
    for stage, ids in users.items():  # row r of a part is the notebook's r-th user of that part
        np.testing.assert_array_equal(split.user_ids(stage), ids)
    for part, m in expected.items():
        got = getattr(split, part)
        assert got.shape == m.shape, part
        assert (got != m).nnz == 0, part


def test_split_equals_the_reference_with_an_item_filter(ratings):
    expected, _, _ = notebook_split(ratings, n_heldout=30, min_uc=10, min_sc=25)
    split = liang_split(ratings, threshold=3.5, min_user_items=10, min_item_users=25, heldout_users=30)
    for part, m in expected.items():
        assert (getattr(split, part) != m).nnz == 0, part


def test_heldout_share_and_disjointness(ratings):
    split = liang_split(ratings, threshold=None, heldout_users=40)
    tr, te = split.val_tr, split.val_te
    assert tr.multiply(te).nnz == 0
    n = np.asarray((tr + te).sum(1)).ravel().astype(int)
    expected = np.where(n >= 5, (0.2 * n).astype(int), 0)
    np.testing.assert_array_equal(np.asarray(te.sum(1)).ravel().astype(int), expected)
    vocab_items = np.unique(split.train.indices)
    assert len(vocab_items) == split.n_items  # every vocabulary item is seen in training


def test_threshold_none_keeps_every_interaction_and_duplicates_collapse():
    df = pd.DataFrame({"user": [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4],
                       "item": [1, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5], "rating": np.nan})
    split = liang_split(df, threshold=None, heldout_users=1)
    assert split.train.data.max() == 1.0
    assert split.train.nnz + split.val_tr.nnz + split.val_te.nnz + split.test_tr.nnz + split.test_te.nnz == 20


def test_too_many_heldout_users_names_the_option(ratings):
    with pytest.raises(ProtocolError, match="dataset.heldout_users=300"):
        liang_split(ratings, threshold=3.5, heldout_users=300)


def test_empty_after_filtering_names_the_options(ratings):
    with pytest.raises(ProtocolError, match="dataset.min_user_items=1000"):
        liang_split(ratings, threshold=3.5, min_user_items=1000, heldout_users=10)


def test_threshold_without_ratings_is_refused():
    df = pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": np.nan})
    with pytest.raises(ProtocolError, match="dataset.threshold=null"):
        liang_split(df, threshold=3.5, heldout_users=1)


def test_hand_built_example_with_every_count_worked_out():
    # 8 users; ratings > 3.5 kept. u1..u7 have 5, 6, 7, 8, 9, 10, 11 high ratings on items 1..n; u8 has 4
    # (dropped by min_user_items=5). Item 99 has only low ratings and disappears with the threshold.
    rows = [(u, i, 5.0) for u, n in zip(range(1, 8), range(5, 12)) for i in range(1, n + 1)]
    rows += [(8, i, 4.0) for i in range(1, 5)] + [(u, 99, 2.0) for u in range(1, 9)]
    df = pd.DataFrame(rows, columns=["user", "item", "rating"])
    split = liang_split(df, threshold=3.5, min_user_items=5, heldout_users=2, seed=98765)
    # 7 users kept -> 3 training users, 2 validation, 2 test; which users is fixed by the permutation
    perm = np.sort(np.arange(1, 8))[np.random.RandomState(98765).permutation(7)]
    n_items = {u: u + 4 for u in range(1, 8)}
    train_n = [n_items[u] for u in perm[:3]]
    vocab = max(train_n)  # items 1..max(n) of the training users
    assert split.train.shape == (3, vocab) and split.train.nnz == sum(train_n)
    for part, users in (("val", perm[3:5]), ("test", perm[5:7])):
        seen = [min(n_items[u], vocab) for u in users]  # items outside the vocabulary are dropped
        heldout = [int(0.2 * n) if n >= 5 else 0 for n in seen]
        assert getattr(split, f"{part}_te").nnz == sum(heldout)
        assert getattr(split, f"{part}_tr").nnz == sum(seen) - sum(heldout)
        np.testing.assert_array_equal(np.asarray(getattr(split, f"{part}_te").sum(1)).ravel(), heldout)


def test_same_seed_same_split_and_disjoint_users(ratings):
    a = liang_split(ratings, threshold=3.5, heldout_users=40)
    b = liang_split(ratings, threshold=3.5, heldout_users=40)
    for part in ("train", "val_tr", "val_te", "test_tr", "test_te"):
        assert (getattr(a, part) != getattr(b, part)).nnz == 0
    kept = ratings[ratings.rating > 3.5].groupby("user").size().ge(5).sum()
    assert a.train.shape[0] + a.val_tr.shape[0] + a.test_tr.shape[0] == kept
