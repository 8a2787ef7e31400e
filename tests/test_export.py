"""`python -m cfrec.export vae_cf`: vae_cf's own loading code rebuilds cfrec's five matrices; recommendations.csv."""

import logging

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from omegaconf import OmegaConf

from cfrec.config import build_model
from cfrec.data.protocol import liang_split
from cfrec.data.sparse import to_torch_csr
from cfrec.data.synthetic import synthetic_interactions
from cfrec.export import main, raw_item_ids, raw_user_ids, write_recommendations, write_vae_cf
from cfrec.rankings import read_rankings
from cfrec.run.progress import RunSummary
from cfrec.run.training import run
from tests.conftest import compose_train


def vae_cf_load(pro_dir):
    """vae_cf notebook's loaders (load_train_data, load_tr_te_data), as written there, on its pro_sg/ files."""
    unique_sid = [line.strip() for line in open(pro_dir / "unique_sid.txt")]
    n_items = len(unique_sid)

    def load_train_data(csv_file):
        tp = pd.read_csv(csv_file)
        n_users = tp["uid"].max() + 1
        rows, cols = tp["uid"], tp["sid"]
        return sp.csr_matrix((np.ones_like(rows), (rows, cols)), dtype="float64", shape=(n_users, n_items))

    def load_tr_te_data(csv_file_tr, csv_file_te):
        tp_tr, tp_te = pd.read_csv(csv_file_tr), pd.read_csv(csv_file_te)
        start_idx = min(tp_tr["uid"].min(), tp_te["uid"].min())
        end_idx = max(tp_tr["uid"].max(), tp_te["uid"].max())
        rows_tr, cols_tr = tp_tr["uid"] - start_idx, tp_tr["sid"]
        rows_te, cols_te = tp_te["uid"] - start_idx, tp_te["sid"]
        data_tr = sp.csr_matrix((np.ones_like(rows_tr), (rows_tr, cols_tr)), dtype="float64",
                                shape=(end_idx - start_idx + 1, n_items))
        data_te = sp.csr_matrix((np.ones_like(rows_te), (rows_te, cols_te)), dtype="float64",
                                shape=(end_idx - start_idx + 1, n_items))
        return data_tr, data_te

    train = load_train_data(pro_dir / "train.csv")
    val_tr, val_te = load_tr_te_data(pro_dir / "validation_tr.csv", pro_dir / "validation_te.csv")
    test_tr, test_te = load_tr_te_data(pro_dir / "test_tr.csv", pro_dir / "test_te.csv")
    return {"train": train, "val_tr": val_tr, "val_te": val_te, "test_tr": test_tr, "test_te": test_te}, unique_sid


def assert_vae_cf_reads_the_split(split, directory):
    matrices, unique_sid = vae_cf_load(directory)
    for part, m in matrices.items():
        ours = getattr(split, part)
        assert m.shape == ours.shape, part
        assert (m != ours).nnz == 0, part
    assert unique_sid == raw_item_ids(split).tolist()
    uids = (directory / "unique_uid.txt").read_text().splitlines()
    assert uids == [*raw_user_ids(split, "train"), *raw_user_ids(split, "val"), *raw_user_ids(split, "test")]


@pytest.fixture
def split():
    return liang_split(synthetic_interactions(n_users=300, n_items=90, mean_items=12, seed=2), threshold=None,
                       heldout_users=30)


def test_vae_cf_loader_rebuilds_the_five_matrices(split, tmp_path):
    write_vae_cf(split, tmp_path)
    assert (tmp_path / "train.csv").read_text().startswith("uid,sid\n")
    assert_vae_cf_reads_the_split(split, tmp_path)


def test_vae_cf_numbers_users_train_then_validation_then_test(split, tmp_path):
    write_vae_cf(split, tmp_path)
    n_train, n_val = split.train.shape[0], split.val_tr.shape[0]
    for name, lo, hi in (("train.csv", 0, n_train), ("validation_tr.csv", n_train, n_train + n_val),
                         ("test_te.csv", n_train + n_val, n_train + 2 * n_val)):
        uid = pd.read_csv(tmp_path / name)["uid"]
        assert uid.min() >= lo and uid.max() < hi, name


def test_vae_cf_export_of_ml100k_from_the_command_line(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("CFREC_DATA_DIR", str(shared_data))
    monkeypatch.setenv("CFREC_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["vae_cf", str(tmp_path / "pro_sg"), "dataset=ml-100k"]) == 0
    from cfrec.config import prepared_dataset

    _, dm = prepared_dataset(["dataset=ml-100k"], "test")
    assert_vae_cf_reads_the_split(dm.split, tmp_path / "pro_sg")


def test_recommendations_round_trip_through_the_ranking_reader(split, tmp_path):
    rng = np.random.default_rng(0)
    n_users = split.test_tr.shape[0]
    scores = rng.normal(size=(n_users, split.n_items)).astype(np.float32)
    scores[split.test_tr.nonzero()] = -np.inf  # fold-in items excluded, as in evaluation
    items = np.argsort(-scores, axis=1, kind="stable")[:, :100]
    top = np.take_along_axis(scores, items, axis=1)
    path = tmp_path / "recommendations.csv"
    lines = write_recommendations(path, raw_user_ids(split, "test"), items, top, raw_item_ids(split))
    frame = pd.read_csv(path, dtype={"user": str, "item": str})
    assert list(frame.columns) == ["user", "rank", "item", "score"] and len(frame) == lines
    assert lines == np.isfinite(top).sum()  # the −inf (fold-in) positions are not written
    np.testing.assert_array_equal(frame["score"].to_numpy(np.float32), top[np.isfinite(top)])
    back = read_rankings(path, raw_user_ids(split, "test"), raw_item_ids(split), split.test_tr)
    width = items.shape[1]  # fewer than 100 items here: the reader pads every list to 100
    np.testing.assert_array_equal(back.items[:, :width], np.where(np.isfinite(top), items, -1))
    assert (back.items[:, width:] == -1).all()
    assert back.missing_users == [] and back.fold_in_removed == 0 and back.other_users == 0


def test_a_held_out_part_whose_last_user_has_no_item_is_warned_about(split, tmp_path, caplog):
    emptied = sp.csr_matrix(split.test_tr.shape, dtype=np.float32)
    keep = np.ones(split.test_tr.shape[0], dtype=np.float32)
    keep[-1] = 0.0  # the last test user loses every item (as if all were outside the vocabulary)
    split.test_tr, split.test_te = sp.diags(keep) @ split.test_tr, emptied
    with caplog.at_level("WARNING", logger="cfrec.export"):
        write_vae_cf(split, tmp_path)
    assert "the first or last test user has no items" in caplog.text


def _ties(scores: np.ndarray) -> int:
    """Positions of the ranked lists (rows) whose score equals the one before it."""
    return int((np.diff(scores, axis=1) == 0).sum())


def test_recommendations_of_a_bf16_run_tie_no_more_than_float32_scores(tmp_path):
    """Training under bf16 autocast (`trainer.precision=bf16-mixed`) must not reach recommendations.csv: the test
    stage scores in float32, so the written top-100 lists tie no more often than the model's float32 scores."""
    torch.manual_seed(0)
    n_items, n_users = 400, 40
    model = build_model(compose_train("debug=vae").model, n_items).eval()
    fold_in = sp.random(n_users, n_items, density=0.05, format="csr", random_state=1, dtype=np.float32)
    fold_in.data[:] = 1.0
    heldout = sp.csr_matrix((n_users, n_items), dtype=np.float32)
    batch = (to_torch_csr(fold_in), to_torch_csr(heldout), torch.arange(n_users))
    with torch.no_grad():
        model.test_step(batch, 0)  # float32 scores: the reference
        reference = model._top.pop()[1].numpy()
        with torch.autocast("cpu", dtype=torch.bfloat16):  # as Lightning's bf16-mixed runs the test stage
            model.test_step(batch, 0)
        items, scores = (t.numpy() for t in model._top.pop())
    path = tmp_path / "recommendations.csv"
    write_recommendations(path, np.arange(n_users).astype(str), items, scores, np.arange(n_items).astype(str))
    written = pd.read_csv(path)["score"].to_numpy(np.float64).reshape(n_users, -1)
    assert written.shape == (n_users, 100)
    assert _ties(written) <= _ties(reference)


def test_a_closed_form_runs_closing_line_names_what_it_wrote(tmp_path, caplog):
    """A closed-form fit writes recommendations.csv (`export.top_k`) and no checkpoints/: its closing line says so."""
    out = tmp_path / "run"
    run(compose_train("model=popularity", "export.top_k=5", out=out, cache=tmp_path / "cache"), out,
        {"model": "popularity"})
    job = type("JobReturn", (), {"hydra_cfg": OmegaConf.create({"hydra": {"runtime": {"output_dir": str(out)}}})})
    with caplog.at_level(logging.INFO, logger="cfrec.run.progress"):
        RunSummary().on_run_end(OmegaConf.create({}), job_return=job())
    assert f"results in {out} (metrics.json, recommendations.csv)" in caplog.messages
