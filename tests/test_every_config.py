"""Every model config (conf/model/*.yaml) and every row (conf/row/*.yaml) composes, trains for one tiny epoch
(conf/debug/default.yaml, with the model's small network from tests/conftest.py's TINY_MODEL) and tests."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from cfrec.config import CONFIG_DIR
from cfrec.training import run
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
