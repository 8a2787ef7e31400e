"""The report never pools runs of different splits: runs of one dataset name on different splits (other held-out
users, threshold or source files) are shown apart under names that say what differs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cfrec.report import report
from cfrec.report.collect import collect
from cfrec.report.groups import aggregate


def counts(train_users: int, heldout: int) -> dict:
    """A split's counts as metrics.json's `data` holds them."""
    part = {"users": heldout, "items": 50, "interactions": 10 * heldout}
    return {"train": {"users": train_users, "items": 50, "interactions": 10 * train_users},
            "val_tr": part, "val_te": part, "test_tr": part, "test_te": part}


def write_run(path: Path, dataset: dict, seed: int, ndcg: float, *, data: dict | None = None,
              fingerprint: str | None = None, status: str = "ok") -> None:
    """A Popularity run's metrics.json on the split `dataset` (config.dataset) describes."""
    path.mkdir(parents=True)
    summary = {"recall@20": ndcg, "recall@50": ndcg, "ndcg@100": ndcg, "n_users": 100,
               **{f"{m}_se": 0.01 for m in ("recall@20", "recall@50", "ndcg@100")}}
    metrics = {"status": status, "model": "popularity", "dataset": dataset["name"], "seed": seed,
               "choices": {"model": "popularity", "dataset": dataset["name"]},
               "config": {"seed": seed, "row": "popularity", "dataset": dataset}}
    if status == "ok":
        metrics.update({"val": summary, "test": summary, "train_seconds": 1.0, "data": data})
        if fingerprint:
            metrics["split_fingerprint"] = fingerprint
    else:
        metrics["error"] = "RuntimeError: boom"
    (path / "metrics.json").write_text(json.dumps(metrics))


def custom(heldout: int) -> dict:
    return {"name": "custom", "format": "triplets", "raw_path": "/data/ratings.tsv", "heldout_users": heldout,
            "reader": {"sep": "\\t", "header": None}}


@pytest.fixture
def two_custom_splits(tmp_path: Path) -> Path:
    """`dataset=custom` with 190 held-out users (seeds 1, 2) and with 100 (seed 1: the same seed as the other)."""
    root = tmp_path / "sweep"
    write_run(root / "0", custom(190), 1, 0.30, data=counts(1520, 190), fingerprint="a" * 16)
    write_run(root / "1", custom(190), 2, 0.32, data=counts(1520, 190), fingerprint="a" * 16)
    write_run(root / "2", custom(100), 1, 0.50, data=counts(1700, 100), fingerprint="b" * 16)
    return root


def test_runs_of_two_held_out_sizes_are_never_averaged(two_custom_splits: Path):
    groups = aggregate(collect([two_custom_splits]))
    assert set(groups) == {("custom (190 held out)", "popularity"), ("custom (100 held out)", "popularity")}
    big, small = groups["custom (190 held out)", "popularity"], groups["custom (100 held out)", "popularity"]
    assert big.n == 2 and big.value("ndcg@100")[0] == pytest.approx(0.31) and not big.notes  # no "ran twice"
    assert small.n == 1 and small.value("ndcg@100")[0] == pytest.approx(0.50)


def test_the_report_shows_each_split_under_its_name(two_custom_splits: Path, tmp_path: Path):
    markdown = report([two_custom_splits], out=tmp_path / "report", plots=False)
    assert "custom (190 held out)" in markdown and "custom (100 held out)" in markdown
    assert "0.3100" in markdown and "0.5000" in markdown
    assert "0.3700" not in markdown  # the mean over all three runs: pooled across splits


def test_thresholds_name_the_split(tmp_path: Path):
    """Two ML-100k runs, `dataset.threshold=3.5` and `null`: two splits, named by their threshold."""
    ml100k = {"name": "ml-100k", "format": "movielens-tsv", "heldout_users": 100}
    write_run(tmp_path / "s" / "0", {**ml100k, "threshold": 3.5}, 1, 0.2, data=counts(700, 100))
    write_run(tmp_path / "s" / "1", {**ml100k, "threshold": None}, 1, 0.3, data=counts(743, 100))
    assert sorted(r.dataset for r in collect([tmp_path / "s"])) == ["ml-100k (all ratings)", "ml-100k (threshold 3.5)"]


def test_the_same_settings_on_other_source_files_are_apart(tmp_path: Path):
    """Same protocol and counts, different source contents (split_fingerprint): still two splits."""
    write_run(tmp_path / "s" / "0", custom(190), 1, 0.3, data=counts(1520, 190), fingerprint="1234abcd" + "0" * 8)
    write_run(tmp_path / "s" / "1", custom(190), 2, 0.4, data=counts(1520, 190), fingerprint="9876fedc" + "0" * 8)
    names = sorted(r.dataset for r in collect([tmp_path / "s"]))
    assert names == ["custom (split 1234abcd)", "custom (split 9876fedc)"]
    assert len(aggregate(collect([tmp_path / "s"]))) == 2


def test_runs_of_one_split_keep_the_name_whatever_they_do_not_record(tmp_path: Path):
    """Runs written before `split_fingerprint` existed and a failed run (no counts) join the one split their
    recorded parts match: one dataset, named as before."""
    write_run(tmp_path / "s" / "0", custom(190), 1, 0.3, data=counts(1520, 190), fingerprint="a" * 16)
    write_run(tmp_path / "s" / "1", custom(190), 2, 0.4, data=counts(1520, 190))
    write_run(tmp_path / "s" / "2", custom(190), 3, 0.0, status="failed")
    runs = collect([tmp_path / "s"])
    assert {r.dataset for r in runs} == {"custom"} and len({r.split for r in runs}) == 1
    groups = aggregate(runs)
    assert groups["custom", "popularity"].n == 2 and groups["custom", "popularity"].failed == 1
