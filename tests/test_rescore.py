"""cfrec.rescore: a finished run made before the beyond-accuracy figures gets them from its best checkpoint,
the same values its own run would have written, and a checkpoint that does not reproduce the run is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cfrec.errors import DataError
from cfrec.rescore import main, needs_rescore, rescore
from cfrec.run.training import run
from tests.conftest import compose_train

BEYOND = ("coverage@100", "gini@100", "popularity@100")


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A tiny finished VAE run (trained once for the module) and what it wrote."""
    tmp = tmp_path_factory.mktemp("rescore")
    out = tmp / "0_run"
    return out, run(compose_train("debug=vae", "trainer.max_epochs=2", out=out, cache=tmp / "cache"), out,
                    {"model": "mult"})


@pytest.fixture
def old_run(finished: tuple[Path, dict], tmp_path: Path) -> tuple[Path, dict]:
    """A copy of that run whose metrics.json is stripped back to what runs wrote before the figures."""
    out = tmp_path / "sweep" / "0_run"
    shutil.copytree(finished[0], out)
    old = json.loads(json.dumps(finished[1]))
    for key in BEYOND:
        del old["test"][key]
    del old["by_activity"]
    (out / "metrics.json").write_text(json.dumps(old))
    return out, finished[1]


def test_rescore_adds_the_figures_the_run_itself_wrote(old_run):
    out, written = old_run
    assert needs_rescore(json.loads((out / "metrics.json").read_text()))
    assert main([str(out.parent)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {k: metrics["test"][k] for k in BEYOND} == pytest.approx({k: written["test"][k] for k in BEYOND})
    for mine, theirs in zip(metrics["by_activity"]["test"], written["by_activity"]["test"], strict=True):
        assert mine == pytest.approx(theirs)
    assert "rescored" in metrics
    assert not needs_rescore(metrics)


def test_a_checkpoint_that_does_not_reproduce_the_test_metrics_is_refused(old_run):
    out, _ = old_run
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["test"]["ndcg@100"] += 0.01
    (out / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(DataError, match="not rescored"):
        rescore(out)
    assert json.loads((out / "metrics.json").read_text()) == metrics  # left as it was
