"""Beyond-accuracy figures and the activity breakdown against hand-computed cases."""

import numpy as np
import pytest
import scipy.sparse as sp

from cfrec.beyond_accuracy import (
    activity_quintiles,
    beyond_accuracy,
    coverage,
    gini_index,
    item_popularity,
    mean_popularity,
)

# two users' lists over 5 items, -1 padding a short list: items 0, 1, 2 recommended 1, 2, 1 times
TOP = np.array([[0, 1, -1], [1, 2, -1]])


def test_coverage_counts_distinct_recommended_items_over_the_catalogue():
    assert coverage(TOP, n_items=5) == pytest.approx(3 / 5)
    assert coverage(TOP, n_items=5, k=1) == pytest.approx(2 / 5)  # only the first column: items 0 and 1


def test_gini_of_hand_computed_counts():
    # counts (1, 2, 1, 0, 0) sorted (0, 0, 1, 1, 2); Σ(2i − 6)·c = 0 + 0 + 0 + 2 + 8 = 10; / (5 · 4) = 0.5
    assert gini_index(TOP, n_items=5) == pytest.approx(0.5)


def test_gini_is_zero_for_equal_counts_and_maximal_on_one_item():
    assert gini_index(np.array([[0, 1], [2, 3]]), n_items=4) == pytest.approx(0.0)
    assert gini_index(np.array([[3], [3], [3]]), n_items=4) == pytest.approx(3 / 4)  # (n − 1) / n
    assert np.isnan(gini_index(np.full((2, 3), -1), n_items=4))


def test_popularity_is_the_share_of_training_users():
    train = sp.csr_matrix(np.array([[1, 1, 1, 0], [1, 0, 1, 0], [0, 0, 1, 0], [0, 0, 1, 0]], dtype=np.float32))
    np.testing.assert_allclose(item_popularity(train), [0.5, 0.25, 1.0, 0.0])


def test_mean_popularity_averages_within_users_then_over_users_with_a_list():
    popularity = np.array([0.5, 0.25, 1.0, 0.0, 0.0])
    top = np.vstack([TOP, [-1, -1, -1]])  # a user with no list is left out, not counted as 0
    # user 0: (0.5 + 0.25) / 2 = 0.375; user 1: (0.25 + 1.0) / 2 = 0.625; mean 0.5
    assert mean_popularity(top, popularity) == pytest.approx(0.5)
    assert beyond_accuracy(top, 5, popularity) == pytest.approx(
        {"coverage@100": 0.6, "gini@100": 0.5, "popularity@100": 0.5})


def test_activity_quintiles_group_users_by_fold_in_count():
    activity = np.array([10, 1, 9, 2, 8, 3, 7, 4, 6, 5, 11])
    values = np.array([1.0, 0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.4, 0.6, 0.5, np.nan])  # the NaN user is left out
    table = activity_quintiles(values, activity)
    assert table["quintile"].tolist() == [1, 2, 3, 4, 5]
    assert table["n_users"].tolist() == [2] * 5
    assert table["activity_min"].tolist() == [1, 3, 5, 7, 9]
    assert table["activity_max"].tolist() == [2, 4, 6, 8, 10]
    np.testing.assert_allclose(table["mean"], [0.15, 0.35, 0.55, 0.75, 0.95])
    np.testing.assert_allclose(table["se"], [0.05 / np.sqrt(2)] * 5)


def test_activity_quintiles_break_ties_by_row_and_keep_sizes_equal():
    table = activity_quintiles(np.arange(7, dtype=float), np.full(7, 3))
    assert table["n_users"].tolist() == [2, 1, 2, 1, 1]  # ⌊5·r/7⌋ for r = 0..6
    np.testing.assert_allclose(table["mean"], [0.5, 2.0, 3.5, 5.0, 6.0])
