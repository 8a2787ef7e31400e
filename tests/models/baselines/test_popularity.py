"""Popularity ranks items by training count, identically for every user, excluding nothing itself."""

import numpy as np
import scipy.sparse as sp
import torch

from cfrec.data.split import Split
from cfrec.models.baselines import Popularity


def _split(train: sp.csr_matrix) -> Split:
    return Split(train, train[:1], train[:1], train[:1], train[:1])


def test_scores_are_training_counts() -> None:
    train = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 1, 0, 0]], dtype=np.float32))
    model = Popularity(n_items=4).fit(_split(train))
    scores = model.score(train[:2])
    assert torch.equal(scores, torch.tensor([[1.0, 3.0, 1.0, 0.0]] * 2))
    assert scores.argmax(1).tolist() == [1, 1]  # the fold-in item itself is not excluded here
    scores[0, 0] = -1  # the metrics write into the scores; the model's counts must not change
    assert model.score(train[:1])[0, 0] == 1.0
