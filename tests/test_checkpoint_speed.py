"""The cheaper checkpoints (cfrec.checkpoints.RunCheckpoint, the default): best-*.ckpt holds the weights only,
last.ckpt is written by time, and a run killed between two writes still resumes to identical metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.test_reliability import TINY, CountSteps, Crash, same, train

# the tests' base config without its `last_every_s=0`: the default throttle (30 s) is in force
THROTTLED = [o for o in TINY if "last_every_s" not in o]
EPOCHS = 4


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("reference")
    return out, train(out, cache, base=THROTTLED)


def test_best_holds_the_weights_only_and_last_everything(reference):
    out, result = reference
    best = torch.load(result["best_checkpoint"], weights_only=False)
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert "optimizer_states" not in best and {"state_dict", "epoch", "hyper_parameters"} <= best.keys()
    assert {"optimizer_states", "callbacks", "loops", "cfrec"} <= last.keys()
    assert last["epoch"] == EPOCHS - 1  # written at the end of the last epoch, as before
    for key, value in best["state_dict"].items():
        assert value.shape == last["state_dict"][key].shape
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == sorted(
        ["last.ckpt", Path(result["best_checkpoint"]).name])


def test_same_results_as_writing_last_every_epoch(tmp_path, cache, reference):
    every_epoch = train(tmp_path / "run", cache)  # TINY: last_every_s=0
    same(every_epoch, reference[1])


def test_crash_between_two_last_writes_replays_to_identical_metrics(tmp_path, cache, reference):
    out = tmp_path / "run"
    with pytest.raises(Crash.Stop):
        train(out, cache, base=THROTTLED, callbacks=[Crash(epoch=2, batch=1)])
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["epoch"] == 0  # only the first epoch's end was written within 30 s
    named = last["callbacks"][next(k for k in last["callbacks"] if k.startswith("RunCheckpoint"))]
    assert Path(named["best_model_path"]).exists()  # a replaced best is deleted only after a newer last.ckpt
    spy = CountSteps()
    resumed = train(out, cache, base=THROTTLED, callbacks=[spy])
    assert spy.steps == (EPOCHS - 1) * 4  # epochs 1, 2 and 3 again
    same(resumed, reference[1])
    assert [h["epoch"] for h in resumed["history"]] == list(range(EPOCHS))
