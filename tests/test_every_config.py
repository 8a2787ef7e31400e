"""Every model config (conf/model/*.yaml) and every row (conf/row/*.yaml) composes, trains for one tiny epoch
(conf/debug/default.yaml, with the model's small network from tests/conftest.py's TINY_MODEL) and tests."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from cfrec.config import CONFIG_DIR
from cfrec.run.training import run
from tests.conftest import TINY_MODEL, compose_train, row_model

MODELS = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml"))
ROWS = sorted(p.stem for p in (CONFIG_DIR / "row").glob("*.yaml"))


def check_one_epoch(out: Path, cache: Path, model: str, *overrides: str) -> None:
    assert model in TINY_MODEL, f"add conf/model/{model}.yaml's small network to TINY_MODEL in tests/conftest.py"
    cfg = compose_train(*overrides, *TINY_MODEL[model], "trainer.max_epochs=1", out=out, cache=cache)
    metrics = run(cfg, out, {"model": model})
    assert metrics["status"] == "ok" and metrics["test"]["n_users"] == 20
    assert metrics.get("epochs") in (None, 1)
    values = {k: v for k, v in metrics["test"].items() if isinstance(v, float)}
    assert values and all(math.isfinite(v) for v in values.values()), values


@pytest.mark.parametrize("model", MODELS)
def test_every_model_config_runs_one_tiny_epoch(tmp_path: Path, cache: Path, model: str):
    check_one_epoch(tmp_path / "run", cache, model, f"model={model}")


@pytest.mark.parametrize("row", ROWS)
def test_every_row_runs_one_tiny_epoch(tmp_path: Path, cache: Path, row: str):
    check_one_epoch(tmp_path / "run", cache, row_model(row), f"+row={row}")


# --- every dataset preset (conf/dataset/*.yaml) builds its split from a small file in its own format ---------------

N_USERS, N_ITEMS, PER_USER = 60, 40, 20  # 20: msd keeps users of 20 items or more
# (user, item) pairs: user u has items u, u+1, ..., u+PER_USER-1 (mod N_ITEMS), so every user and item is well used
PAIRS = [(u, (u + j) % N_ITEMS) for u in range(N_USERS) for j in range(PER_USER)]


def _lines(pattern: str) -> str:
    return "".join(pattern.format(u=u + 1, i=i + 1) for u, i in PAIRS)


def _netflix(path: Path) -> None:
    path.mkdir(parents=True)
    for item in range(N_ITEMS):
        rows = "".join(f"{u + 1},5,2005-09-06\n" for u, i in PAIRS if i == item)
        (path / f"mv_{item + 1:07d}.txt").write_text(f"{item + 1}:\n{rows}")


def _adjacency(path: Path) -> str:
    by_user = {u: [i for v, i in PAIRS if v == u] for u in range(N_USERS)}
    return "".join(f"{u} {' '.join(map(str, items))}\n" for u, items in by_user.items())


# what a file of each `format` holds; a preset with a new format needs its writer here
FORMAT_WRITERS = {
    "movielens-tsv": lambda p: p.write_text(_lines("{u}\t{i}\t5\t881250949\n")),
    "movielens-dat": lambda p: p.write_text(_lines("{u}::{i}::5::978300760\n")),
    "movielens-csv": lambda p: p.write_text("userId,movieId,rating,timestamp\n" + _lines("{u},{i},5.0,1112486027\n")),
    "msd-triplets": lambda p: p.write_text(_lines("user{u:03d}\tSO{i:05d}\t3\n")),
    "netflix": _netflix,
    "adjacency": lambda p: p.write_text(_adjacency(p)),
    "counted": lambda p: p.write_text("".join(
        f"{PER_USER} {' '.join(str(i) for v, i in PAIRS if v == u)}\n" for u in range(N_USERS))),
    "triplets": lambda p: p.write_text(_lines("{u},{i}\n")),
}
PRESETS = sorted(p.stem for p in (CONFIG_DIR / "dataset").glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESETS)
def test_every_dataset_preset_builds_its_split_from_a_file_in_its_format(tmp_path: Path, preset: str):
    from hydra.utils import instantiate

    data = tmp_path / "data"
    cfg = compose_train(f"dataset={preset}", f"paths.data_dir={data}", cache=tmp_path / "cache", debug=False)
    fmt = cfg.dataset.get("format") or "triplets"
    overrides = [f"dataset={preset}", f"paths.data_dir={data}", "dataset.heldout_users=10"]
    if fmt != "synthetic":
        assert fmt in FORMAT_WRITERS, f"conf/dataset/{preset}.yaml: add a writer for format {fmt!r}"
        raw = cfg.dataset.get("raw_path")
        paths = [Path(p) for p in ([raw] if isinstance(raw, str) else list(raw or []))] or [data / "ratings.csv"]
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            FORMAT_WRITERS[fmt](path)
        if not raw:  # `custom` names no file: the user gives one
            overrides += ["dataset.format=triplets", f"dataset.raw_path={paths[0]}"]
        overrides += ["dataset.min_item_users=0"] if cfg.dataset.get("min_item_users") else []
    cfg = compose_train(*overrides, cache=tmp_path / "cache", debug=False)
    dm = instantiate(cfg.dataset)
    dm.setup()
    counts = dm.split.counts()
    expected_users = cfg.dataset.synthetic.n_users if fmt == "synthetic" else N_USERS
    assert dm.name == cfg.dataset.name == preset
    assert counts["val_tr"]["users"] == counts["test_tr"]["users"] == 10, counts
    assert counts["train"]["users"] + 2 * 10 == expected_users, counts
