"""cfrec.run.result and cfrec.run.record: metrics.json has one schema, written and read back by `RunResult` alone and
documented in docs/reliability.md, and a run's result is held by the run's callback, so that loading a checkpoint
after fitting cannot change it."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import torch
from omegaconf import OmegaConf

from cfrec.config import PROJECT_ROOT
from cfrec.errors import DataError
from cfrec.run.checkpoints import CHECKPOINT_KEY
from cfrec.run.result import ABSENT, RunResult, schema_table
from cfrec.run.training import record_failure, run
from tests.conftest import compose_train

NEURAL = RunResult(status="ok", model="mult", dataset="synthetic", seed=1, choices={"model": "mult"},
                   val={"ndcg@100": 0.5, "n_users": 20}, epochs=2, best_epoch=1, beta_cap_epoch=None,
                   resumed_from=None, history=[{"epoch": 0, "ndcg@100": 0.4}, {"epoch": 1, "ndcg@100": 0.5}],
                   config={"seed": 1})


def test_a_result_round_trips_with_nulls_kept_and_absent_keys_left_out(tmp_path):
    path = NEURAL.write(tmp_path)
    text = path.read_text()
    assert text == json.dumps(NEURAL.to_json(), indent=2, sort_keys=True) + "\n"  # key-sorted, as cfrec.io writes
    on_disk = json.loads(text)
    assert on_disk["resumed_from"] is None and on_disk["beta_cap_epoch"] is None  # null is a value
    assert "test" not in on_disk and "chosen" not in on_disk and "error" not in on_disk  # absent: left out
    back = RunResult.read(tmp_path)  # a folder means its metrics.json
    assert back == NEURAL and back.test is ABSENT and not back.test
    assert back.replace(epochs=3).write(tmp_path / "again").read_text() == text.replace('"epochs": 2', '"epochs": 3')


def test_a_key_outside_the_schema_or_a_missing_required_one_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({**NEURAL.to_json(), "ndcg": 0.5, "extra": 1}))
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}: keys outside metrics.json's schema .*: extra, ndcg"):
        RunResult.read(path)
    path.write_text(json.dumps({"status": "ok", "model": "mult"}))
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}: missing dataset, seed"):
        RunResult.read(path)
    path.write_text("{not json")
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}: not JSON"):
        RunResult.read(path)


def test_a_failure_record_holds_the_run_identity_the_error_and_its_traceback_only(tmp_path):
    cfg = compose_train(out=tmp_path, cache=tmp_path / "cache")
    record_failure(cfg, tmp_path / "failed", {"model": "mult"}, ValueError("boom"))
    on_disk = json.loads((tmp_path / "failed" / "metrics.json").read_text())
    assert list(on_disk) == ["choices", "config", "dataset", "error", "model", "seed", "status", "traceback"]
    assert (on_disk["status"], on_disk["model"], on_disk["dataset"]) == ("failed", "mult", "synthetic")
    assert on_disk["seed"] == cfg.seed and on_disk["error"] == "ValueError: boom"
    assert RunResult.read(tmp_path / "failed").traceback.endswith("ValueError: boom\n")
    # nothing known of the run: its identity keys are still there, as null
    record_failure(OmegaConf.create({}), tmp_path / "bare", {}, KeyboardInterrupt(), status="interrupted")
    bare = json.loads((tmp_path / "bare" / "metrics.json").read_text())
    assert bare["status"] == "interrupted" and bare["model"] is bare["dataset"] is bare["seed"] is None


def test_reliability_md_documents_every_key_of_the_schema_with_its_meaning():
    doc = (PROJECT_ROOT / "docs" / "reliability.md").read_text()
    section = doc.split("\n## metrics.json\n", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `(\w+)` \|", section, flags=re.M)
    assert documented == [f.name for f in dataclasses.fields(RunResult)]
    assert schema_table() in section, ("docs/reliability.md's metrics.json table differs from the schema; paste "
                                       "python -c 'from cfrec.run.result import schema_table; print(schema_table())'")


def test_loading_the_best_checkpoint_after_fitting_cannot_change_the_recorded_history(tmp_path):
    """Lightning's own ModelCheckpoint writes full best checkpoints, each with cfrec's entry and the history as it
    was at that epoch; with `monitor=epoch, mode=min` the best stays epoch 0, so testing it loads a checkpoint
    whose history is one epoch long after three were trained."""
    out = tmp_path / "run"
    plain = ["callbacks.model_checkpoint._target_=pytorch_lightning.callbacks.ModelCheckpoint",
             "~callbacks.model_checkpoint.last_overhead", "~callbacks.model_checkpoint.keep_after_finish",
             "callbacks.model_checkpoint.monitor=epoch", "callbacks.model_checkpoint.mode=min"]
    cfg = compose_train("debug=vae", "trainer.max_epochs=3", *plain, out=out, cache=tmp_path / "cache")
    metrics = run(cfg, out, {"model": "mult"})
    tested = torch.load(metrics["best_checkpoint"], map_location="cpu", weights_only=False)
    assert [h["epoch"] for h in tested[CHECKPOINT_KEY]["history"]] == [0]  # what a load could have put back
    assert metrics["best_epoch"] == 0 and metrics["epochs"] == 3
    assert [h["epoch"] for h in metrics["history"]] == [0, 1, 2]
