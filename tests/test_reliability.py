"""Reliability by fault injection on tiny synthetic data: resume after a kill, determinism, bad input,
non-finite losses, corrupted checkpoints and caches, atomic metrics.json, and a sweep with a failing run.

Runs are composed with Hydra's compose API and run in-process (`cfrec.run.training.run`); only a real kill
and a real multirun use a subprocess. docs/reliability.md states what these tests guarantee.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import DictConfig

import cfrec.config
from cfrec import io as io_module
from cfrec.data import cache as cache_module
from cfrec.data.datamodule import prepare_split
from cfrec.data.protocol import ProtocolError
from cfrec.data.readers import DataFormatError
from cfrec.run.callbacks import NonFiniteLossError
from cfrec.run.checkpoints import AtomicCheckpointIO, CheckpointError
from cfrec.run.training import record_failure, run
from tests.conftest import compose_train

ROOT = Path(cfrec.config.PROJECT_ROOT)
EPOCHS = 4
SMALL_MODEL = [
    "model.encoder.hidden_dims=[32]", "model.encoder.latent_dim=8", "model.decoder_hidden_dims=[32]",
    "dataset.batch_size=50", "logger=none", "+trainer.enable_progress_bar=false",
    "callbacks.model_checkpoint.last_overhead=null",  # last.ckpt at every epoch end (the default: where it is cheap)
    "beta.total_anneal_steps=200000",  # a fixed β ramp: one sized to the run would differ when the run is extended
]
# 200 synthetic users, 20 validation + 20 test: 160 training users, so 4 steps per epoch
TINY = ["dataset.synthetic.n_users=200", "dataset.synthetic.n_items=60", "dataset.heldout_users=20", *SMALL_MODEL]
COMPARED = ("val", "test", "history", "best_epoch", "epochs")


def config(out: Path, cache: Path, *overrides: str, epochs: int = EPOCHS, base: list[str] = TINY) -> DictConfig:
    return compose_train(*base, f"trainer.max_epochs={epochs}", *overrides, out=out, cache=cache, debug=False)


def train(out: Path, cache: Path, *overrides: str, callbacks: list[pl.Callback] | None = None,
          epochs: int = EPOCHS, base: list[str] = TINY) -> dict:
    """What train.py does for one run: run, and on an exception record the failure and re-raise."""
    cfg = config(out, cache, *overrides, epochs=epochs, base=base)
    try:
        return run(cfg, out, {"model": "mult"}, callbacks)
    except Exception as error:
        record_failure(cfg, out, {"model": "mult"}, error)
        raise


def same(a: dict, b: dict) -> None:
    for key in COMPARED:
        assert a[key] == b[key], key


def status(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache) -> tuple[Path, dict]:
    """An uninterrupted run of EPOCHS epochs (its folder is copied, never changed, by the tests)."""
    out = tmp_path_factory.mktemp("reference")
    return out, train(out, cache)


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


class Crash(pl.Callback):
    """Raises in the middle of `epoch` (after `batch` steps of it), as a kill there would stop the run."""

    class Stop(Exception):
        pass

    def __init__(self, epoch: int, batch: int = 1):
        self.epoch, self.batch = epoch, batch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            raise Crash.Stop(f"injected crash at epoch {self.epoch}")


class CountSteps(pl.Callback):
    def __init__(self):
        self.steps, self.sampler_epochs, self.first_users = 0, [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)
        self.steps += 1
        if batch_idx == 0:
            self.sampler_epochs.append((trainer.current_epoch, trainer.train_dataloader.sampler.epoch))
            self.first_users.append(batch.users.tolist())


# --- resume and determinism ---------------------------------------------------------------------


def test_same_seed_gives_identical_metrics(tmp_path, cache, reference):
    same(train(tmp_path / "again", cache), reference[1])


def test_lightning_sets_the_sampler_epoch_every_epoch(tmp_path, cache):
    spy = CountSteps()
    train(tmp_path / "run", cache, callbacks=[spy], epochs=3)
    assert spy.sampler_epochs == [(0, 0), (1, 1), (2, 2)]
    assert spy.first_users[0] != spy.first_users[1] != spy.first_users[2]  # a fresh order each epoch


def test_crash_mid_epoch_then_rerun_resumes_to_identical_metrics(tmp_path, cache, reference):
    out = tmp_path / "run"
    with pytest.raises(Crash.Stop):
        train(out, cache, callbacks=[Crash(epoch=2, batch=1)])
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["epoch"] == 1  # the end of the last whole epoch; nothing of the crashed epoch is kept
    spy = CountSteps()
    resumed = train(out, cache, callbacks=[spy])
    assert resumed["resumed_from"] == str(out / "checkpoints" / "last.ckpt")
    assert spy.steps == (EPOCHS - 2) * 4  # only epochs 2 and 3 were trained again
    same(resumed, reference[1])
    assert [h["epoch"] for h in resumed["history"]] == list(range(EPOCHS))


def test_shorter_run_extended_with_more_epochs_matches(tmp_path, cache, reference):
    out = tmp_path / "run"
    train(out, cache, epochs=2)
    same(train(out, cache), reference[1])


def test_completed_run_rerun_does_not_retrain(tmp_path, cache, reference):
    out = copy_run(reference[0], tmp_path / "run")
    spy = CountSteps()
    again = train(out, cache, callbacks=[spy])
    assert spy.steps == 0
    assert again["best_checkpoint"].startswith(str(out))  # the copy's own best checkpoint, not the original's
    same(again, reference[1])


def test_early_stopped_run_rerun_does_not_retrain(tmp_path, cache):
    out = tmp_path / "run"
    # no improvement after epoch 0: stops at 1 (the plain rule, not waiting for β's cap)
    stop = ("callbacks.early_stopping.patience=1", "callbacks.early_stopping.wait_for_beta=false", "model.lr=0.0")
    first = train(out, cache, *stop, epochs=10)
    assert first["stopped_early"] and first["epochs"] == 2
    spy = CountSteps()
    again = train(out, cache, *stop, callbacks=[spy], epochs=10)
    assert spy.steps == 0 and again["stopped_early"]
    same(again, first)


def test_sigkill_then_same_command_resumes_to_identical_metrics_with_one_best_and_one_last(tmp_path, cache,
                                                                                           reference):
    """A real SIGKILL of train.py after the best checkpoint moved past the last.ckpt on disk (last.ckpt written
    after the first epoch only: `last_overhead=0`), then the same command: identical metrics, and the run folder
    holds exactly one best-*.ckpt and one last.ckpt (the killed attempt's unnamed bests are not left behind)."""
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # the tests' thread count
    sparse_last = [*(o for o in TINY if "last_overhead" not in o), "callbacks.model_checkpoint.last_overhead=0"]
    cmd = [sys.executable, "train.py", f"hydra.run.dir={out}", f"paths.cache_dir={cache}", *sparse_last,
           f"trainer.max_epochs={EPOCHS}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last, second_best = out / "checkpoints" / "last.ckpt", out / "checkpoints" / "best-001.ckpt"
    try:
        deadline = time.monotonic() + 240
        while not second_best.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert not (out / "metrics.json").exists(), "the run ended before it could be killed"
    assert torch.load(last, weights_only=False)["epoch"] == 0
    assert len(list(last.parent.glob("best-*.ckpt"))) >= 2  # best-000 (named by last.ckpt) and later ones
    resumed = train(out, cache, base=sparse_last)  # the identical configuration, in the same folder
    same(resumed, reference[1])
    assert sorted(p.name for p in last.parent.iterdir()) == [Path(resumed["best_checkpoint"]).name, "last.ckpt"]


def test_resume_message_counts_epochs_as_the_epoch_lines_do(tmp_path, cache, caplog):
    """"resuming from ... (end of epoch N, ...)" is followed by the line of epoch N+1 (both counted from 1); the
    run's own checkpoints raise no "directory not empty" warning."""
    out = tmp_path / "run"
    with pytest.raises(Crash.Stop):
        train(out, cache, callbacks=[Crash(epoch=2, batch=1)])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="cfrec"), warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always")
        train(out, cache)
    assert not [w for w in raised if "exists and is not empty" in str(w.message)]
    lines = [r.getMessage() for r in caplog.records if r.name in ("cfrec.run.checkpoints", "cfrec.run.progress")]
    resumed = next(i for i, line in enumerate(lines) if line.startswith("resuming from"))
    assert "(end of epoch 2, step 8)" in lines[resumed], lines[resumed]
    assert lines[resumed + 1].startswith(f"epoch 3/{EPOCHS}"), lines[resumed + 1]


# --- loggers across a resume ----------------------------------------------------------------------

# the CSV and (offline) W&B loggers of logger=default, given outside a Hydra job the values Hydra fills in
LOGGED = [*(o for o in TINY if o != "logger=none"), "logger=default", "logger.wandb.run_mode=RUN",
          "logger.wandb.sweep_dir=null", "logger.wandb.model=mult", "logger.wandb.choices={}",
          "logger.wandb.overrides=[]", "logger.wandb.sweeper_params=null", "logger.wandb.exclude_keys=[]"]


def csv_rows(out: Path) -> list[dict[str, str]]:
    with (out / "csv" / "metrics.csv").open(newline="") as file:
        return sorted(({k: v for k, v in row.items() if v != ""} for row in csv.DictReader(file)),
                      key=lambda row: (float(row["epoch"]), int(row["step"]), sorted(row)))


def wandb_history(run_dir: Path) -> list[dict]:
    """The history rows of the one offline W&B run left in `run_dir`, without W&B's own `_` keys."""
    from tests.test_console import wandb_records

    [path] = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    rows = []
    for record in wandb_records(path):
        if record.WhichOneof("record_type") == "history":
            row = {("/".join(i.nested_key) or i.key): json.loads(i.value_json) for i in record.history.item}
            rows.append({k: v for k, v in row.items() if not k.startswith("_")})
    return sorted(rows, key=lambda row: (row["epoch"], row["trainer/global_step"], sorted(row)))


def assert_same_rows(resumed: list[dict], uninterrupted: list[dict]) -> None:
    assert [sorted(r) for r in resumed] == [sorted(r) for r in uninterrupted]
    for a, b in zip(resumed, uninterrupted, strict=True):
        np.testing.assert_allclose([float(a[k]) for k in sorted(a)], [float(b[k]) for k in sorted(b)], rtol=1e-6)


def test_a_resumed_run_keeps_every_epoch_in_its_csv_and_its_one_wandb_run(tmp_path, cache, monkeypatch):
    """Killed in epoch 3 and resumed: csv/metrics.csv holds every epoch once (Lightning's CSVLogger deleted the
    earlier ones), and the run folder holds one offline W&B run, of the run's one id, with the whole history
    (the killed attempt's own folder moved to wandb/superseded/), as an uninterrupted run's."""
    for key, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": tmp_path / "wandb",
                       "WANDB_CACHE_DIR": tmp_path / "wandb-cache", "WANDB_CONFIG_DIR": tmp_path / "wandb-config",
                       "WANDB_DATA_DIR": tmp_path / "wandb-data"}.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    uninterrupted, out = tmp_path / "uninterrupted", tmp_path / "run"
    train(uninterrupted, cache, base=LOGGED)
    with pytest.raises(Crash.Stop):
        train(out, cache, base=LOGGED, callbacks=[Crash(epoch=2, batch=1)])
    run_id = (out / "wandb" / "cfrec-run-id").read_text().strip()
    [killed] = (out / "wandb").glob("offline-run-*")
    train(out, cache, base=LOGGED)
    assert_same_rows(csv_rows(out), csv_rows(uninterrupted))
    [left] = (out / "wandb").glob("offline-run-*")
    assert re.fullmatch(rf"offline-run-\d{{8}}_\d{{6}}-{run_id}(-\d+)?", left.name) and left != killed
    assert [p.name for p in (out / "wandb" / "superseded").iterdir()] == [killed.name]
    history = wandb_history(out)
    assert sorted(r["epoch"] for r in history if "val/ndcg@100" in r) == [0, 1, 2, 3, EPOCHS]  # + the final one
    assert_same_rows(history, wandb_history(uninterrupted))


# --- non-finite loss ----------------------------------------------------------------------------


class Poison(pl.Callback):
    """Sets a decoder weight to NaN: before the first step of `epoch`, or after the last step of it."""

    def __init__(self, epoch: int, after_last_step: bool = False):
        self.epoch, self.after = epoch, after_last_step

    def _poison(self, pl_module):
        with torch.no_grad():
            pl_module.decoder[0].weight[0, 0] = float("nan")

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch and not self.after:
            self._poison(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == self.epoch and self.after and batch_idx == trainer.num_training_batches - 1:
            self._poison(pl_module)


def assert_checkpoints_finite_and_before(out: Path, epoch: int) -> None:
    for path in (out / "checkpoints").glob("*.ckpt"):
        ckpt = torch.load(path, weights_only=False)
        assert ckpt["epoch"] < epoch, path
        assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values()), path


def test_nan_loss_stops_with_epoch_and_step_and_keeps_last_good_checkpoint(tmp_path, cache):
    out = tmp_path / "run"
    # poisoned in the epoch of index 2, the third: messages count epochs from 1, as the console does
    with pytest.raises(NonFiniteLossError, match=r"non-finite training loss \(nan\) at epoch 3 \(step 8\)") as e:
        train(out, cache, callbacks=[Poison(epoch=2)])
    assert "last.ckpt (end of epoch 2)" in str(e.value)
    assert_checkpoints_finite_and_before(out, 2)
    record = status(out)
    assert record["status"] == "failed" and "non-finite training loss (nan) at epoch 3 (step 8)" in record["error"]


def test_nan_parameters_after_an_epochs_last_step_are_never_checkpointed(tmp_path, cache):
    out = tmp_path / "run"
    expected = r"non-finite parameters \(decoder.0.weight\) after the updates of epoch 2 \(step 8\)"
    with pytest.raises(NonFiniteLossError, match=expected):
        train(out, cache, callbacks=[Poison(epoch=1, after_last_step=True)])
    assert_checkpoints_finite_and_before(out, 1)


# --- checkpoints --------------------------------------------------------------------------------


def test_truncated_checkpoint_is_refused_naming_the_file(tmp_path, cache, reference):
    out = copy_run(reference[0], tmp_path / "run")
    last = out / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="last.ckpt: cannot resume, the checkpoint is unreadable") as e:
        train(out, cache)
    assert str(last) in str(e.value) and "move it aside" in str(e.value)
    assert status(out)["status"] == "failed"
    assert json.loads((out / "metrics.previous.json").read_text())["test"] == reference[1]["test"]  # kept
    last.rename(out / "checkpoints" / "last.ckpt.corrupt")  # the documented remedy: start over
    for best in (out / "checkpoints").glob("best-*.ckpt"):
        best.unlink()
    same(train(out, cache), reference[1])


def test_checkpoint_of_another_configuration_is_refused(tmp_path, cache, reference):
    out = copy_run(reference[0], tmp_path / "run")
    with pytest.raises(CheckpointError, match=r"another configuration \(model.lr: 0.001 -> 0.01\)"):
        train(out, cache, "model.lr=0.01")


# --- metrics.json -------------------------------------------------------------------------------


class HalfWrite:
    """A file whose write stores half the bytes, then fails as a full disk would."""

    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def fileno(self):
        return self.f.fileno()

    def write(self, data):
        self.f.write(bytes(data)[: len(data) // 2])
        self.f.flush()
        raise OSError(28, "No space left on device")


class OsWithFullDisk:
    """cfrec.io's view of `os` with a full disk; the rest of the process is untouched."""

    def __getattr__(self, name):
        return getattr(os, name)

    @staticmethod
    def fdopen(fd, mode):
        return HalfWrite(os.fdopen(fd, mode))


def test_checkpoint_writes_are_atomic(tmp_path, cache, reference, monkeypatch):
    out = copy_run(reference[0], tmp_path / "run")
    last = out / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    monkeypatch.setattr(io_module, "os", OsWithFullDisk())
    with pytest.raises(OSError, match="No space left"):
        AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(10_000)}}, last)
    assert last.read_bytes() == before
    names = sorted(p.name for p in (reference[0] / "checkpoints").iterdir())
    assert sorted(p.name for p in last.parent.iterdir()) == names  # no temporary file left

def test_failure_while_writing_metrics_keeps_the_previous_file_whole(tmp_path, cache, reference, monkeypatch):
    out = copy_run(reference[0], tmp_path / "run")
    before = (out / "metrics.json").read_bytes()
    monkeypatch.setattr(io_module, "os", OsWithFullDisk())
    with pytest.raises(OSError, match="No space left") as failure:
        run(config(out, cache), out, {"model": "mult"})
    # the run's first atomic output write failed (per_user.csv comes before metrics.json, its commit marker)
    assert any(entry.name == "atomic_write_bytes" for entry in failure.traceback)
    record_failure(config(out, cache), out, {"model": "mult"}, RuntimeError("x"))  # must not raise either
    assert (out / "metrics.json").read_bytes() == before
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


# --- bad input ----------------------------------------------------------------------------------


def raw_run(tmp_path: Path, fmt: str, text: str, *overrides: str) -> tuple[Path, Path, list[str]]:
    raw = tmp_path / f"data.{fmt}"
    raw.write_text(text)
    out, cache = tmp_path / "run", tmp_path / "cache"
    return out, cache, ["dataset=custom", f"dataset.format={fmt}", f"dataset.raw_path={raw}", *SMALL_MODEL, *overrides]


def good_triplets(n_users: int = 40, n_items: int = 12) -> str:
    return "".join(f"{u},{i}\n" for u in range(n_users) for i in range(n_items) if (u + i) % 3)


def test_good_custom_file_trains(tmp_path):
    out, cache, ov = raw_run(tmp_path, "triplets", good_triplets(), "dataset.heldout_users=5")
    assert train(out, cache, *ov, epochs=1, base=[])["status"] == "ok"


@pytest.mark.parametrize("fmt,text,where,what", [
    ("triplets", good_triplets() + "7\n", ":321:", "field"),
    ("triplets", "", "", "empty"),
    ("adjacency", "1 2 3\n2 4 x5\n", ":2:", "'x5' is not an integer"),
])
def test_malformed_raw_file_names_file_and_line_and_leaves_caches(tmp_path, fmt, text, where, what):
    out, cache, ov = raw_run(tmp_path, fmt, text, "dataset.heldout_users=5")
    (cache / "other-0123").mkdir(parents=True)
    (cache / "other-0123" / "manifest.json").write_text("{}")
    with pytest.raises(DataFormatError) as e:
        train(out, cache, *ov, epochs=1, base=[])
    message = str(e.value)
    assert f"data.{fmt}{where}" in message and what in message.lower(), message
    assert status(out)["status"] == "failed" and f"data.{fmt}" in status(out)["error"]
    assert sorted(p.name for p in cache.iterdir() if p.name != "raw") == ["other-0123"]  # nothing new, nothing lost


@pytest.mark.parametrize("override,option", [
    ("dataset.min_user_items=1000", "dataset.min_user_items=1000"),
    ("dataset.heldout_users=100000", "dataset.heldout_users=100000"),
])
def test_impossible_split_names_the_option(tmp_path, override, option):
    out, cache, ov = raw_run(tmp_path, "triplets", good_triplets(), "dataset.heldout_users=5", override)
    with pytest.raises(ProtocolError, match=option):
        train(out, cache, *ov, epochs=1, base=[])
    assert option in status(out)["error"]


@pytest.mark.parametrize("override,error,words", [
    ("model=nope", MissingConfigException, "Could not find 'model/nope'"),
    ("model.nope=1", ConfigCompositionException, "Could not override 'model.nope'"),
])
def test_unknown_model_or_option_is_named(tmp_path, override, error, words):
    with pytest.raises(error, match=words):
        config(tmp_path, tmp_path, override)


# --- processed-split cache ----------------------------------------------------------------------


def synthetic_kw(cache: Path) -> dict:
    return dict(name="synthetic", format="synthetic", heldout_users=20, cache_dir=cache,
                synthetic={"n_users": 200, "n_items": 60})


def entries(cache: Path) -> list[Path]:
    return [p for p in cache.iterdir() if p.is_dir()]


def test_interrupted_preprocessing_leaves_no_partial_cache(tmp_path, monkeypatch):
    real_savez = np.savez

    def dies_mid_write(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt  # as Ctrl-C / SIGINT in the middle of writing

    monkeypatch.setattr(cache_module.np, "savez", dies_mid_write)
    with pytest.raises(KeyboardInterrupt):
        prepare_split(**synthetic_kw(tmp_path))
    (entry,) = entries(tmp_path)
    assert list(entry.iterdir()) == []  # no split.npz, no manifest, no temporary file
    monkeypatch.setattr(cache_module.np, "savez", real_savez)
    monkeypatch.setattr(cache_module, "atomic_write_json", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        prepare_split(**synthetic_kw(tmp_path))  # dies after split.npz, before its manifest (the commit)
    monkeypatch.undo()
    split = prepare_split(**synthetic_kw(tmp_path))  # the uncommitted entry is rebuilt
    assert split.counts() == cache_module.load_split(entry).counts()


def test_corrupted_cache_is_detected_and_rebuilt(tmp_path, caplog):
    first = prepare_split(**synthetic_kw(tmp_path))
    (entry,) = entries(tmp_path)
    npz = entry / "split.npz"
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    again = prepare_split(**synthetic_kw(tmp_path))
    assert "rebuilding the processed split" in caplog.text and "checksum" in caplog.text
    assert (again.train != first.train).nnz == 0
    cache_module.load_split(entry)  # verifies again


# --- sweeps and signals (subprocess) ------------------------------------------------------------


def sweep_overrides(sweep: Path, cache: Path) -> list[str]:
    return ["-m", f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=${hydra.job.num}", f"paths.cache_dir={cache}",
            *[o for o in TINY if not o.startswith("dataset.heldout_users")], "trainer.max_epochs=1",
            "dataset.heldout_users=100000,20"]


def check_sweep(sweep: Path) -> None:
    failed, ok = status(sweep / "0"), status(sweep / "1")
    assert failed["status"] == "failed" and "dataset.heldout_users=100000" in failed["error"]
    assert "ProtocolError" in failed["error"] and failed["traceback"]
    assert ok["status"] == "ok" and ok["test"]["n_users"] > 0


def test_multirun_with_a_failing_job_completes_the_others_in_process(tmp_path, cache, monkeypatch):
    """train.py's own `main` under Hydra's multirun launcher, in this process (the subprocess twin is slow)."""
    spec = importlib.util.spec_from_file_location("cfrec_train_entry_point", ROOT / "train.py")
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    sweep = tmp_path / "sweep"
    monkeypatch.setattr(sys, "argv", ["train.py", *sweep_overrides(sweep, cache)])
    try:
        entry.main()
    finally:
        GlobalHydra.instance().clear()
    check_sweep(sweep)


@pytest.mark.slow
def test_multirun_with_a_failing_job_completes_the_others(tmp_path, cache):
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, "train.py", *sweep_overrides(sweep, cache)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    check_sweep(sweep)


@pytest.mark.slow
def test_sigterm_stops_gracefully_records_interrupted_and_resumes(tmp_path, cache, reference):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "train.py", f"hydra.run.dir={out}", f"paths.cache_dir={cache}", *TINY,
           f"trainer.max_epochs={EPOCHS}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = out / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err.decode()[-2000:]
    record = status(out)
    assert record["status"] == "interrupted" and "stopped by SIGTERM at epoch" in record["error"]
    same(train(out, cache), reference[1])
