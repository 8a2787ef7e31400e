"""A run's recommendations.csv, the vae_cf export and `python -m cfrec.rankings` agree with the run's metrics.json.

NDCG@100 is recomputed from recommendations.csv outside cfrec (the vae_cf notebook's formula, held-out items
read from the vae_cf export through unique_uid.txt / unique_sid.txt), and the file is scored again by
`cfrec.rankings`; both must give metrics.json's numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

import cfrec.config
from cfrec.export import write_vae_cf
from cfrec.rankings import main as evaluate_main
from cfrec.run.training import run

TINY = ["dataset.synthetic.n_users=300", "dataset.synthetic.n_items=150", "dataset.heldout_users=30",
        "dataset.batch_size=50", "logger=none", "+trainer.enable_progress_bar=false"]
SMALL_VAE = ["model.encoder.hidden_dims=[32]", "model.encoder.latent_dim=8", "model.decoder_hidden_dims=[32]"]


def run_with_export(out: Path, cache: Path, *overrides: str) -> tuple[dict, object]:
    with initialize_config_dir(config_dir=str(cfrec.config.CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.output_dir={out}", f"paths.cache_dir={cache}", *overrides])
    metrics = run(cfg, out, {})
    _, dm = cfrec.config.prepared_dataset([f"paths.cache_dir={cache}", *overrides], "test")
    return metrics, dm.split


def notebook_ndcg_from_files(recommendations: Path, pro_sg: Path, k: int = 100) -> float:
    """Mean NDCG@k of the test users with held-out items, from the two files only (vae_cf's formula:
    binary relevance, 1/log2(rank+1), ideal over min(n, k) held-out items)."""
    uid = pd.read_csv(pro_sg / "unique_uid.txt", header=None, dtype=str)[0]
    sid = pd.read_csv(pro_sg / "unique_sid.txt", header=None, dtype=str)[0]
    test_te = pd.read_csv(pro_sg / "test_te.csv")
    heldout = set(zip(uid[test_te["uid"]], sid[test_te["sid"]]))
    n_heldout = pd.Series(uid[test_te["uid"]].to_numpy()).value_counts()
    recs = pd.read_csv(recommendations, dtype={"user": str, "item": str})
    recs = recs[recs["rank"] <= k]
    hit = np.array([(u, i) in heldout for u, i in zip(recs["user"], recs["item"])])
    dcg = (hit / np.log2(recs["rank"].to_numpy() + 1)).astype(float)
    dcg = pd.Series(dcg).groupby(recs["user"].to_numpy()).sum().reindex(n_heldout.index, fill_value=0.0)
    tp = 1.0 / np.log2(np.arange(2, k + 2))
    idcg = np.array([tp[: min(n, k)].sum() for n in n_heldout.to_numpy()])
    return float((dcg.to_numpy() / idcg).mean())


def check_run(out: Path, split, top_k: int, capsys) -> dict:
    metrics = json.loads((out / "metrics.json").read_text())
    recs = pd.read_csv(out / "recommendations.csv", dtype={"user": str, "item": str})
    assert list(recs.columns) == ["user", "rank", "item", "score"]
    assert recs.groupby("user").size().max() == top_k
    test_tr = set(zip(np.repeat(np.asarray(split.test_user_ids).astype(str), np.diff(split.test_tr.indptr)),
                      np.asarray(split.item_ids).astype(str)[split.test_tr.indices]))
    assert not any(pair in test_tr for pair in zip(recs["user"], recs["item"]))  # no fold-in item recommended
    write_vae_cf(split, out / "pro_sg")
    assert notebook_ndcg_from_files(out / "recommendations.csv", out / "pro_sg") == \
        pytest.approx(metrics["test"]["ndcg@100"], rel=1e-6)  # cfrec's per-user values are float32
    capsys.readouterr()
    return metrics


def evaluate_printed(path: Path, overrides: list[str], capsys) -> dict:
    assert evaluate_main([str(path), *overrides]) == 0
    return json.loads(capsys.readouterr().out)


def test_neural_run_recommendations_reproduce_its_metrics(tmp_path, capsys):
    out, cache = tmp_path / "run", tmp_path / "cache"
    metrics, split = run_with_export(out, cache, *TINY, *SMALL_VAE, "trainer.max_epochs=2", "export.top_k=120")
    check_run(out, split, 120, capsys)
    assert evaluate_printed(out / "recommendations.csv", [f"paths.cache_dir={cache}", *TINY], capsys) == \
        metrics["test"]
    assert {"coverage@100", "gini@100", "popularity@100"} <= set(metrics["test"])
    assert [q["quintile"] for q in metrics["by_activity"]["test"]] == [1, 2, 3, 4, 5]


def test_fitted_run_recommendations_reproduce_its_metrics(tmp_path, capsys):
    out, cache = tmp_path / "run", tmp_path / "cache"
    metrics, split = run_with_export(out, cache, *TINY, "model=ease", "model.lambdas=[50]", "export.top_k=100")
    check_run(out, split, 100, capsys)
    assert evaluate_printed(out / "recommendations.csv", [f"paths.cache_dir={cache}", *TINY], capsys) == \
        metrics["test"]


def test_no_export_by_default(tmp_path):
    out = tmp_path / "run"
    run_with_export(out, tmp_path / "cache", *TINY, "model=popularity")
    assert not (out / "recommendations.csv").exists()


@pytest.mark.slow
def test_ml100k_mult_vae_recommendations_export_and_evaluate_agree(shared_data, tmp_path, capsys, monkeypatch):
    """The acceptance check on real data: 20 epochs of Mult-VAE on ML-100k (about a minute on 2 cores)."""
    monkeypatch.setenv("CFREC_DATA_DIR", str(shared_data))
    out, cache = tmp_path / "run", tmp_path / "cache"
    overrides = ["dataset=ml-100k", "logger=none", "+trainer.enable_progress_bar=false"]
    metrics, split = run_with_export(out, cache, *overrides, "trainer.max_epochs=20", "export.top_k=100")
    check_run(out, split, 100, capsys)
    assert evaluate_printed(out / "recommendations.csv", [f"paths.cache_dir={cache}", "dataset=ml-100k"],
                            capsys) == metrics["test"]
