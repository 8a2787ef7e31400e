"""Liang et al. (2018)'s strong-generalisation split, step for step as the reference notebook.

threshold → item filter → user filter → permute sorted user ids (seed) → last 2·H users are
validation then test → item vocabulary = items of training users → 80/20 fold-in per held-out user
(generator reseeded at the start of each of the two splits).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cfrec.data.split import Split
from cfrec.errors import DataError


class ProtocolError(DataError):
    """The data cannot be split as asked (empty after filtering, too few users, ...)."""


def binarize(df: pd.DataFrame, threshold: float | None) -> pd.DataFrame:
    """Keep rating > threshold (None keeps every interaction); one row per (user, item)."""
    if threshold is not None:
        if "rating" not in df or df["rating"].isna().all():
            raise ProtocolError(f"dataset.threshold={threshold} needs ratings, but this data has none; "
                                "set dataset.threshold=null")
        df = df[df["rating"] > threshold]
    return df.drop_duplicates(["user", "item"])[["user", "item"]]


def filter_triplets(df: pd.DataFrame, min_user_items: int, min_item_users: int) -> pd.DataFrame:
    """Drop items with < min_item_users users, then users with < min_user_items items (in that order)."""
    if min_item_users > 0:
        counts = df["item"].value_counts()
        df = df[df["item"].isin(counts.index[counts >= min_item_users])]
    if min_user_items > 0:
        counts = df["user"].value_counts()
        df = df[df["user"].isin(counts.index[counts >= min_user_items])]
    return df


def split_fold_in(df: pd.DataFrame, seed: int, test_prop: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per user (sorted id order), int(test_prop·n) random items to held-out if n >= 5, else all to fold-in.

    One `RandomState(seed).choice` call per user with >= 5 items, exactly as the notebook's
    `split_train_test_proportion`, so the draws match it bit for bit.
    """
    rng = np.random.RandomState(seed)
    df = df.sort_values("user", kind="stable")  # groupby order, original order within a user
    users = df["user"].to_numpy()
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    sizes = np.diff(np.r_[starts, len(users)])
    heldout = np.zeros(len(df), dtype=bool)
    for start, n in zip(starts[sizes >= 5], sizes[sizes >= 5]):  # RNG stream is sequential by nature
        heldout[start + rng.choice(n, size=int(test_prop * n), replace=False)] = True
    return df[~heldout], df[heldout]


def _matrix(df: pd.DataFrame, user_index: pd.Index, item_index: pd.Index) -> sp.csr_matrix:
    rows = user_index.get_indexer(df["user"])
    cols = item_index.get_indexer(df["item"])
    data = np.ones(len(rows), dtype=np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(len(user_index), len(item_index)), dtype=np.float32)


def liang_split(
    df: pd.DataFrame,
    *,
    threshold: float | None,
    min_user_items: int = 5,
    min_item_users: int = 0,
    heldout_users: int,
    seed: int = 98765,
    test_prop: float = 0.2,
) -> Split:
    """Split interactions (columns user, item[, rating]) into Liang et al.'s five matrices."""
    df = filter_triplets(binarize(df, threshold), min_user_items, min_item_users)
    if df.empty:
        raise ProtocolError(
            f"no interactions left after filtering (dataset.threshold={threshold}, "
            f"dataset.min_user_items={min_user_items}, dataset.min_item_users={min_item_users})"
        )
    unique_users = np.sort(df["user"].unique())
    n_users = len(unique_users)
    if heldout_users < 1 or 2 * heldout_users >= n_users:
        raise ProtocolError(
            f"dataset.heldout_users={heldout_users} needs more than {2 * heldout_users} users "
            f"(validation + test + at least one training user); the data has {n_users} after filtering"
        )
    unique_users = unique_users[np.random.RandomState(seed).permutation(n_users)]
    n_train = n_users - 2 * heldout_users
    train_users, val_users, test_users = np.split(unique_users, [n_train, n_train + heldout_users])

    train = df[df["user"].isin(train_users)]
    item_index = pd.Index(pd.unique(train["item"]))  # order of first appearance, as the notebook

    def held_out(users: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        part = df[df["user"].isin(users) & df["item"].isin(item_index)]
        fold_in, heldout = split_fold_in(part, seed, test_prop)
        index = pd.Index(users)
        return _matrix(fold_in, index, item_index), _matrix(heldout, index, item_index)

    val_tr, val_te = held_out(val_users)
    test_tr, test_te = held_out(test_users)
    return Split(
        train=_matrix(train, pd.Index(train_users), item_index),
        val_tr=val_tr,
        val_te=val_te,
        test_tr=test_tr,
        test_te=test_te,
        item_ids=item_index.to_numpy(),
        train_user_ids=train_users,
        val_user_ids=val_users,
        test_user_ids=test_users,
    )
