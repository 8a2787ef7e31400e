"""`python -m cfrec.rankings`: a hand-checked ranking file, missing users, fold-in items, malformed lines."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cfrec.config import PROJECT_ROOT
from cfrec.data.split import Split
from cfrec.export import raw_item_ids, raw_user_ids
from cfrec.rankings import RankingFileError, evaluate_file, main

ITEMS = np.array(["a", "b", "c", "d", "e"])


def csr(rows: list[list[int]]) -> sp.csr_matrix:
    m = np.zeros((len(rows), len(ITEMS)), dtype=np.float32)
    for r, cols in enumerate(rows):
        m[r, cols] = 1.0
    return sp.csr_matrix(m)


@pytest.fixture
def split() -> Split:
    """Test users u1 (fold-in a; held out b, c), u2 (fold-in b; held out a), u3 (fold-in c; nothing held out).
    Training popularity: a 1.0, b 0.5, c 0.25, d 0.25, e 0."""
    train = csr([[0, 1, 2], [0, 1], [0, 3], [0]])
    return Split(train=train, val_tr=csr([[0]]), val_te=csr([[1]]), test_tr=csr([[0], [1], [2]]),
                 test_te=csr([[1, 2], [0], []]), item_ids=ITEMS,
                 train_user_ids=np.array(["t1", "t2", "t3", "t4"]), val_user_ids=np.array(["v1"]),
                 test_user_ids=np.array(["u1", "u2", "u3"]))


def write(tmp_path, text: str):
    path = tmp_path / "rankings.csv"
    path.write_text(text)
    return path


def test_hand_checked_file(split, tmp_path):
    path = write(tmp_path, "user,rank,item,score\n"
                           "u1,1,b,0.9\n"
                           "u1,2,a,0.8\n"  # u1's fold-in item: removed, d and c move up to ranks 2 and 3
                           "u1,4,c,0.6\n"
                           "u1,3,d,0.7\n"  # lines need not be in rank order
                           "u9,1,a,0.1\n"  # not a test user: ignored
                           "\n"
                           "u3,1,d,0.5\n")  # u3 has no held-out item: skipped by the accuracy metrics
    test, by_activity, _, read = evaluate_file(path, split)
    assert read.missing_users == ["u2"] and read.fold_in_removed == 1 and read.other_users == 1
    np.testing.assert_array_equal(read.items[:, :4], [[1, 3, 2, -1], [-1] * 4, [3, -1, -1, -1]])
    u1 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))  # hits at ranks 1 and 3 of 2 held-out items
    # u1 and u2 have one fold-in item each (ties go by row): ⌊5·r/2⌋ puts u1 in quintile 1 and u2 (NDCG 0, an
    # empty list) in quintile 3; u3 has no held-out item and is left out
    quintiles = [(q["quintile"], q["n_users"], q["ndcg@100"]) for q in by_activity]
    assert quintiles == [(1, 1, pytest.approx(u1)), (3, 1, 0.0)]
    assert test["n_users"] == 2
    assert test["ndcg@100"] == pytest.approx(u1 / 2)
    assert test["ndcg@100_se"] == pytest.approx(u1 / 2 / math.sqrt(2))  # std (ddof 0) of (u1, 0) over √2
    assert test["recall@20"] == pytest.approx(0.5) and test["recall@50"] == pytest.approx(0.5)
    assert test["coverage@100"] == pytest.approx(3 / 5)  # b, c, d
    assert test["gini@100"] == pytest.approx(0.5)  # counts (0, 1, 1, 2, 0): see tests/test_beyond.py
    assert test["popularity@100"] == pytest.approx(((0.5 + 0.25 + 0.25) / 3 + 0.25) / 2)


@pytest.mark.parametrize("text, line, message", [
    ("user,rank,item\nu1,1,b\nu1,x,c\n", 3, "rank 'x' is not a positive integer"),
    ("user,rank,item\nu1,1,b\nu1,0,c\n", 3, "rank '0' is not a positive integer"),
    ("user,rank,item\nu1,1,b\nu1,2\n", 3, "needs a user, a rank and an item"),
    ("user,rank,item\nu1,1,b\nu1,2,c\nu1,3,d,0.5\n", 4, "Expected 3 fields"),
    ("user,rank,item\nu1,1,b\n\nu1,2,zz\n", 4, "item 'zz' is not among the split's 5 items"),
    ("user,rank,item\nu1,1,b\nu1,1,c\n", 3, "user 'u1' has rank 1 on two lines"),
    ("user,rank,item\nu1,1,b\nu1,2,b\n", 3, "user 'u1' has item 'b' on two lines"),
    ("user,item,score\nu1,b,1\n", 1, "the header names no rank column"),
])
def test_malformed_line_is_named_by_file_and_line(split, tmp_path, text, line, message):
    path = write(tmp_path, text)
    with pytest.raises(RankingFileError) as error:
        evaluate_file(path, split)
    assert str(error.value).startswith(f"{path}:{line}: ") and message in str(error.value)


def popularity_file(path, split: Split) -> None:
    """Every test user's list: all items by training popularity (fold-in items included; evaluate drops them)."""
    order = np.argsort(-split.train.getnnz(axis=0), kind="stable")
    users = raw_user_ids(split, "test")[1:]  # the first test user is left out
    lines = [f"{u},{r + 1},{raw_item_ids(split)[i]}" for u in users for r, i in enumerate(order)]
    path.write_text("user,rank,item\n" + "\n".join(lines) + "\n")


def test_command_line_prints_metrics_json_keys_and_reports_missing_users(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CFREC_CACHE_DIR", str(tmp_path / "cache"))
    overrides = ["dataset.synthetic.n_users=400", "dataset.synthetic.n_items=120", "dataset.heldout_users=40"]
    from cfrec.config import prepared_dataset

    _, dm = prepared_dataset(overrides, "test")
    path = tmp_path / "pop.csv"
    popularity_file(path, dm.split)
    assert main([str(path), *overrides, "--name", "Popularity (file)", "--out", str(tmp_path / "run")]) == 0
    out, err = capsys.readouterr()
    test = json.loads(out)
    assert set(test) == {"recall@20", "recall@20_se", "recall@50", "recall@50_se", "ndcg@100", "ndcg@100_se",
                         "n_users", "coverage@100", "gini@100", "popularity@100"}
    assert f"1 of the 40 test users have no line in {path}" in err and raw_user_ids(dm.split, "test")[0] in err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"] == test and metrics["rankings"]["missing_users"] == [raw_user_ids(dm.split, "test")[0]]
    assert [q["quintile"] for q in metrics["by_activity"]["test"]] == [1, 2, 3, 4, 5]
    per_user = pd.read_csv(tmp_path / "run" / "per_user.csv")  # for the report's paired comparisons
    assert set(per_user["split"]) == {"test"} and per_user["ndcg@100"].mean() == pytest.approx(test["ndcg@100"])

    from cfrec.report import report

    markdown = report([tmp_path / "run"], out=tmp_path / "report", plots=False)
    assert "Popularity (file)" in markdown


def test_command_line_prints_no_sparse_beta_warning(tmp_path):
    """torch warns on the first sparse CSR tensor a process builds; cfrec's are sparse on purpose, so a fresh
    `python -m cfrec.rankings` prints no warning at all."""
    overrides = ["dataset.synthetic.n_users=200", "dataset.synthetic.n_items=60", "dataset.heldout_users=20",
                 f"dataset.cache_dir={tmp_path / 'cache'}"]
    from cfrec.config import prepared_dataset

    _, dm = prepared_dataset(overrides, "test")
    popularity_file(tmp_path / "pop.csv", dm.split)
    proc = subprocess.run([sys.executable, "-m", "cfrec.rankings", str(tmp_path / "pop.csv"), *overrides],
                          cwd=PROJECT_ROOT, env={**os.environ, "PYTHONWARNINGS": "default"}, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr and "beta state" not in proc.stderr, proc.stderr


def test_command_line_names_a_malformed_line_and_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CFREC_CACHE_DIR", str(tmp_path / "cache"))
    path = write(tmp_path, "user,rank,item\n1,1,2\n1,-3,4\n")
    assert main([str(path), "dataset.synthetic.n_users=100", "dataset.heldout_users=10"]) == 2
    assert capsys.readouterr().err.strip().endswith(f"error: {path}:3: rank '-3' is not a positive integer")


def test_a_name_of_cfrecs_own_rows_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        main([str(tmp_path / "x.csv"), "--name", "ease"])
