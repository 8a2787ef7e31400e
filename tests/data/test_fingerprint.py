"""A split's fingerprint: the same for the same protocol on the same file contents (wherever they lie), another
for other contents or other protocol settings; training writes it to metrics.json for the report."""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

from cfrec.data import CFDataModule
from cfrec.data.datamodule import cache_entry
from cfrec.data.fingerprint import PROTOCOL_DEFAULTS, protocol, split_fingerprint
from cfrec.io import sha256_file
from cfrec.run.training import run
from tests.conftest import compose_train


def ratings(path: Path, shift: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"u{u},i{(u * 7 + k + shift) % 40}\n" for u in range(60) for k in range(8)))
    return path


def fingerprint(raw: Path, cache: Path, heldout: int = 10) -> str:
    return split_fingerprint(CFDataModule(name="custom", format="triplets", raw_path=str(raw), heldout_users=heldout,
                                          cache_dir=cache))


def test_fingerprint_follows_contents_and_protocol_not_the_path(tmp_path: Path):
    data = ratings(tmp_path / "a" / "ratings.csv")
    base = fingerprint(data, tmp_path / "cache")
    moved = tmp_path / "b" / "copy.csv"
    moved.parent.mkdir()
    shutil.copy(data, moved)
    assert fingerprint(moved, tmp_path / "cache") == base  # the same contents elsewhere: the same split
    assert fingerprint(data, tmp_path / "other-cache") == base  # built afresh: the same
    assert fingerprint(data, tmp_path / "cache", heldout=5) != base
    assert fingerprint(ratings(tmp_path / "c" / "ratings.csv", shift=1), tmp_path / "cache") != base


def test_the_cache_manifest_records_the_sources_sha256(tmp_path: Path):
    data = ratings(tmp_path / "ratings.csv")
    dm = CFDataModule(name="custom", format="triplets", raw_path=str(data), heldout_users=10, cache_dir=tmp_path / "c")
    dm.setup()
    manifest = json.loads((dm.cache_path / "manifest.json").read_text())
    assert [s["sha256"] for s in manifest["sources"]] == [sha256_file(data)]


def test_protocol_defaults_are_the_data_modules():
    """The report fills a setting a run's config lacks with the default the split was built with."""
    defaults = {k: p.default for k, p in inspect.signature(cache_entry).parameters.items() if k in PROTOCOL_DEFAULTS}
    assert defaults == PROTOCOL_DEFAULTS
    assert protocol({"threshold": 3}) == protocol({"threshold": 3.0, "reader": {"sep": None}})


def test_a_run_records_its_split_fingerprint(tmp_path: Path):
    out = tmp_path / "run"
    cfg = compose_train("model=popularity", out=out, cache=tmp_path / "cache")
    metrics = run(cfg, out, {"model": "popularity"})
    dm = CFDataModule(**{k: v for k, v in cfg.dataset.items() if k != "_target_"})
    assert metrics["split_fingerprint"] == split_fingerprint(dm)
    assert json.loads((out / "metrics.json").read_text())["split_fingerprint"] == metrics["split_fingerprint"]
