"""The checkpoint policy (cfrec.run.checkpoints.RunCheckpoint, the default): best-*.ckpt holds the weights only,
last.ckpt is written at every epoch end where that is cheap against the epoch, a run killed between two writes still
resumes to identical metrics, a run folder ends with one best and one last checkpoint, and `keep_after_finish=best`
keeps the tested weights alone."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch

from cfrec.errors import ConfigError
from cfrec.run.checkpoints import RunCheckpoint
from tests.test_reliability import TINY, CountSteps, Crash, same, train

# the tests' base config writing last.ckpt only after the first and the last epoch (`last_overhead=0`)
THROTTLED = [*(o for o in TINY if "last_overhead" not in o), "callbacks.model_checkpoint.last_overhead=0"]
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
    every_epoch = train(tmp_path / "run", cache)  # TINY: last_overhead=null, every epoch
    same(every_epoch, reference[1])


def test_crash_between_two_last_writes_replays_to_identical_metrics(tmp_path, cache, reference):
    out = tmp_path / "run"
    with pytest.raises(Crash.Stop):
        train(out, cache, base=THROTTLED, callbacks=[Crash(epoch=2, batch=1)])
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["epoch"] == 0  # only the first epoch's end was written
    named = last["callbacks"][next(k for k in last["callbacks"] if k.startswith("RunCheckpoint"))]
    assert Path(named["best_model_path"]).exists()  # a replaced best is deleted only after a newer last.ckpt
    assert len(list((out / "checkpoints").glob("best-*.ckpt"))) == 2  # best-000 (named) and best-001 (not)
    spy = CountSteps()
    resumed = train(out, cache, base=THROTTLED, callbacks=[spy])
    assert spy.steps == (EPOCHS - 1) * 4  # epochs 1, 2 and 3 again
    same(resumed, reference[1])
    assert [h["epoch"] for h in resumed["history"]] == list(range(EPOCHS))
    # the killed attempt's unnamed best is gone, not versioned beside its replay (best-001-v1.ckpt)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [Path(resumed["best_checkpoint"]).name,
                                                                      "last.ckpt"]


class SlowEpochs(pl.Callback):
    """Makes every epoch last at least `seconds`, and at least 40 times the run's last write of last.ckpt (a real
    dataset's epoch against its checkpoint, on a machine with any disk), and records the epoch that last.ckpt holds
    when each epoch starts."""

    def __init__(self, out: Path, seconds: float):
        self.out, self.seconds, self.last_at_start = out, seconds, []

    def on_train_epoch_start(self, trainer, pl_module):
        last = self.out / "checkpoints" / "last.ckpt"
        self.last_at_start.append(torch.load(last, weights_only=False)["epoch"] if last.exists() else None)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx == 0:
            writes = [cb._last_write_s for cb in trainer.callbacks if isinstance(cb, RunCheckpoint)]
            time.sleep(max([self.seconds, *(40 * w for w in writes)]))


def test_last_is_written_at_every_epoch_end_where_that_is_cheap(tmp_path, cache, reference):
    """The default rule (`last_overhead: 0.05`): with epochs long against a write, every epoch starts from a
    last.ckpt of the epoch before it, so a kill costs at most the epoch it interrupts."""
    out = tmp_path / "run"
    spy = SlowEpochs(out, seconds=0.5)
    default = [o for o in TINY if "last_overhead" not in o]
    same(train(out, cache, base=default, callbacks=[spy]), reference[1])
    assert spy.last_at_start == [None, 0, 1, 2]


def test_the_write_rule_weighs_the_last_write_against_the_time_since():
    checkpoint = RunCheckpoint(dirpath="unused", last_overhead=0.05)
    trainer = SimpleNamespace(should_stop=False, max_epochs=10, current_epoch=3)
    assert checkpoint._due(trainer, now=100.0)  # nothing written yet: the first epoch's end
    checkpoint._last_written_at, checkpoint._last_write_s = 100.0, 0.5
    assert not checkpoint._due(trainer, now=105.0)  # a 0.5 s write after 5 s of training: 10 %, too dear
    assert checkpoint._due(trainer, now=110.0)  # after 10 s: 5 %
    assert checkpoint._due(SimpleNamespace(should_stop=False, max_epochs=10, current_epoch=9), now=101.0)  # last
    assert RunCheckpoint(dirpath="unused", last_overhead=None)._due(trainer, now=0.0)
    checkpoint.last_overhead = 0.0
    assert not checkpoint._due(trainer, now=1e9)  # 0: the first and the last epoch only


@pytest.mark.parametrize("option", ["keep_after_finish=last", "last_overhead=-1"])
def test_bad_checkpoint_options_name_the_option(option):
    key, value = option.split("=")
    with pytest.raises(ConfigError, match=f"callbacks.model_checkpoint.{option}"):
        RunCheckpoint(dirpath="unused", **{key: int(value) if value.lstrip("-").isdigit() else value})


def test_keep_after_finish_best_keeps_the_tested_weights_and_the_result(tmp_path, cache, reference):
    out = tmp_path / "run"
    best_only = "callbacks.model_checkpoint.keep_after_finish=best"
    first = train(out, cache, best_only)
    same(first, reference[1])
    assert [p.name for p in (out / "checkpoints").iterdir()] == [Path(first["best_checkpoint"]).name]
    spy = CountSteps()
    again = train(out, cache, best_only, callbacks=[spy])  # rerun: the finished run's metrics.json stands
    assert spy.steps == 0 and again["test"] == first["test"] and again["history"] == first["history"]
    longer = CountSteps()
    train(out, cache, best_only, callbacks=[longer], epochs=EPOCHS + 1)  # nothing to extend: trained anew
    assert longer.steps == (EPOCHS + 1) * 4
    assert len(list((out / "checkpoints").iterdir())) == 1
