"""What a researcher sees: one line per epoch without a terminal, a short console, distinct and resolved W&B runs
in one group per sweep, a closing note saying where the results are, and cfrec's own --help."""

from __future__ import annotations

import logging
import os
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from cfrec.config import PROJECT_ROOT
from cfrec.models.schedules import Anneal, Zero
from cfrec.run.loggers import distinguishing, run_name, swept_keys
from cfrec.run.progress import EpochProgress, QuietConsole, sweep_summary
from tests.conftest import compose_train

TINY = ["dataset.synthetic.n_users=300", "dataset.synthetic.n_items=200", "dataset.heldout_users=50"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "CFREC_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline",
           "WANDB_DIR": str(tmp_path / "wandb"), "WANDB_CACHE_DIR": str(tmp_path / "wandb" / "cache"),
           "WANDB_CONFIG_DIR": str(tmp_path / "wandb" / "config"), "WANDB_DATA_DIR": str(tmp_path / "wandb" / "data")}
    for key in ("WANDB_API_KEY", "WANDB_SILENT", "WANDB_QUIET"):
        env.pop(key, None)
    return env


def _train(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    """train.py with stdout and stderr to a pipe (not a terminal), as under nohup or SLURM."""
    proc = subprocess.run([sys.executable, "train.py", *overrides], cwd=PROJECT_ROOT, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def wandb_records(path: Path) -> list:
    """The protobuf records of an offline W&B run file (LevelDB log format: 32 KiB blocks of chunks)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, records, buf, pos = path.read_bytes(), [], b"", 7  # 7-byte header ":W&B" + magic + version
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if length == 0 and kind == 0:  # block padding
            pos += left
            continue
        buf, pos = buf + data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = pb.Record()
            record.ParseFromString(buf)
            records.append(record)
            buf = b""
    return records


def wandb_run(run_dir: Path) -> dict:
    """Name, group, tags, config and summary of the one offline W&B run in `run_dir`."""
    [path] = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    out: dict = {"summary": {}}
    for record in wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out.update(name=record.run.display_name, group=record.run.run_group, tags=list(record.run.tags),
                       config={i.key: i.value_json for i in record.run.config.update})
        elif kind == "summary":
            out["summary"].update({"/".join(i.nested_key) or i.key: i.value_json for i in record.summary.update})
    return out


def test_sweep_runs_are_distinct_resolved_grouped_and_the_console_is_short(tmp_path: Path):
    """The design card's sweep (2 × 2, 2 epochs each, output to a pipe): four W&B runs with names and tags that
    tell them apart, one group, resolved configs, test metrics and best epoch in the summaries; the console has
    one line per epoch, no W&B or Lightning chatter, and ends with where the runs are and the report command."""
    sweep = tmp_path / "sweep"
    proc = _train(tmp_path, "-m", "model=mult,sivae", "likelihood=multinomial,logistic", "trainer.max_epochs=2", *TINY,
                  f"hydra.sweep.dir={sweep}")
    console = (proc.stdout + proc.stderr).splitlines()
    runs = [wandb_run(d) for d in sorted(sweep.glob("*_*"))]
    assert sorted(r["name"] for r in runs) == ["mult-logistic-synthetic-s98765", "mult-multinomial-synthetic-s98765",
                                               "sivae-logistic-synthetic-s98765", "sivae-multinomial-synthetic-s98765"]
    assert {r["group"] for r in runs} == {"train-sweep"}
    assert len({tuple(sorted(r["tags"])) for r in runs}) == 4
    for run in runs:
        assert {"likelihood=logistic", "likelihood=multinomial"} & set(run["tags"]) and "prior=standard" in run["tags"]
        trainer = run["config"]["trainer"]
        assert '"precision":"32-true"' in trainer or '"precision":"bf16-mixed"' in trainer
        assert "${" not in "".join(run["config"].values())  # the values that ran, not interpolations
        assert {"test/ndcg@100", "test/recall@20", "best_epoch"} <= set(run["summary"])
    assert len([ln for ln in console if " epoch " in f" {ln}" and "/2 " in ln]) == 8
    assert not [ln for ln in console if ln.startswith("wandb:") or "GPU available" in ln or "Warning" in ln]
    assert len(console) <= 30, "\n".join(console)
    assert console[-3].endswith(f"sweep done: 4 runs (4 ok) in {sweep}/")
    assert console[-2].endswith(f"report: python -m cfrec.report {sweep}")
    assert console[-1].endswith(f"upload to W&B: wandb sync {sweep}/*/wandb/offline-run-*")
    # the printed `wandb sync` works with the installed wandb (dry run: nothing is uploaded)
    runs_to_sync = [str(p) for p in sweep.glob("*/wandb/offline-run-*")]
    sync = subprocess.run([sys.executable, "-m", "wandb", "sync", "--dry-run", *runs_to_sync], env=_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert sync.returncode == 0 and "Would sync 4 run(s)" in sync.stdout + sync.stderr, sync.stdout + sync.stderr
    # the report the closing note points at says where it wrote its files
    report = subprocess.run([sys.executable, "-m", "cfrec.report", str(sweep)], cwd=PROJECT_ROOT, env=_env(tmp_path),
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0
    assert report.stderr.strip().endswith(f"to {sweep / 'report'}/") and "report.md" in report.stderr


@pytest.mark.slow
def test_six_epoch_run_to_a_file_prints_one_line_per_epoch(tmp_path: Path):
    proc = _train(tmp_path, "trainer.max_epochs=6", *TINY, f"hydra.run.dir={tmp_path / 'run'}")
    console = (proc.stdout + proc.stderr).splitlines()
    assert len(console) <= 40
    epochs = [ln for ln in console if " epoch " in ln]
    assert [ln.split()[2] for ln in epochs] == [f"{e}/6" for e in range(1, 7)]
    assert all("loss" in ln and "NDCG@100" in ln and "β" in ln and ln.endswith(" s") for ln in epochs)
    assert (tmp_path / "run" / "train.log").read_text().count("GPU available") == 1  # chatter kept in the log


def test_name_says_what_differs_in_the_sweep(tmp_path: Path):
    (tmp_path / "multirun.yaml").write_text(OmegaConf.to_yaml({"hydra": {"overrides": {"task": [
        "model=mult,sivae", "likelihood=multinomial,logistic", "trainer.max_epochs=2", "beta.cap=0.1,0.3"]}}}))
    keys = swept_keys(str(tmp_path), {"row": "mult_vae,logistic"})
    assert keys == ["row", "model", "likelihood", "beta.cap"]
    differs = distinguishing(["row=logistic", "model=mult", "likelihood=logistic", "trainer.max_epochs=2",
                              "beta.cap=0.1", "seed=3"], keys)
    assert differs == {"likelihood": "logistic", "beta.cap": "0.1"}
    assert run_name("mult", "ml-1m", 3, "logistic", differs) == "logistic-logistic-beta.cap=0.1-ml-1m-s3"
    # a single run: its command-line overrides except the excluded keys
    assert distinguishing(["prior=vamp", "trainer.max_epochs=5", "dataset=ml-1m"], None, ["trainer.max_epochs"]) == {
        "prior": "vamp"}


def test_epoch_line_has_loss_validation_beta_time_and_marks_a_new_best():
    progress = EpochProgress()
    progress._loss_sum, progress._batches = torch.tensor(10.0), 4
    history = [{"epoch": 0, "ndcg@100": 0.3, "recall@20": 0.2}, {"epoch": 1, "ndcg@100": 0.25, "recall@20": 0.21}]
    module = SimpleNamespace(history=history, beta=Anneal(cap=0.2, total_anneal_steps=100))
    trainer = SimpleNamespace(callback_metrics={}, max_epochs=10, current_epoch=1, global_step=11)
    line = progress.line(trainer, module)
    assert line.startswith("epoch  2/10  loss 2.5000  val Recall@20 0.2100  NDCG@100 0.2500  β 0.1000  ")
    assert line.endswith(" s")
    history[-1]["ndcg@100"] = 0.35
    module.beta = Zero()  # no KL term: no β shown
    assert "NDCG@100 0.3500 *  " in progress.line(trainer, module) and "β" not in progress.line(trainer, module)


def test_quiet_console_drops_library_chatter_and_known_harmless_warnings():
    quiet = QuietConsole()

    def shown(name: str, level: int, message: str) -> bool:
        return quiet.filter(logging.LogRecord(name, level, __file__, 1, message, None, None))

    assert not shown("pytorch_lightning.utilities.rank_zero", logging.INFO, "GPU available: False, used: False")
    assert not shown("py.warnings", logging.WARNING, "x.py:1: UserWarning: Sparse CSR tensor support is in beta state")
    assert shown("py.warnings", logging.WARNING, "x.py:1: UserWarning: something new")
    assert shown("pytorch_lightning.trainer", logging.WARNING, "a real problem")
    assert shown("cfrec.run.progress", logging.INFO, "epoch 1/2  loss 1.0")


def test_sweep_summary_says_where_and_how_to_report(tmp_path: Path):
    for i, status in enumerate(["ok", "ok", "failed"]):
        (tmp_path / f"{i}_x").mkdir()
        (tmp_path / f"{i}_x" / "metrics.json").write_text(f'{{"status": "{status}"}}')
    assert sweep_summary(tmp_path) == [f"sweep done: 3 runs (1 failed, 2 ok) in {tmp_path}/",
                                       f"report: python -m cfrec.report {tmp_path}"]


def test_help_is_cfrecs_own():
    proc = subprocess.run([sys.executable, "train.py", "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0
    text = proc.stdout
    assert text.startswith("cfrec: ") and len(text.splitlines()) < 60
    for needle in ("experiment=table2", "experiment=table3", "dataset: citeulike-a, custom", "docs/running.md",
                   "python train.py -m model=mult,sivae", "--hydra-help"):
        assert needle in text, needle


# --------------------------------------------------------------------------------------------- defaults

def _compose(overrides: list[str]):
    return compose_train(*overrides, debug=False)


def test_default_run_anneals_beta_to_its_cap_within_its_epochs(tmp_path: Path):
    cfg = _compose([f"dataset.cache_dir={tmp_path}"])
    dm = instantiate(cfg.dataset)
    dm.setup()
    steps = cfg.trainer.max_epochs * len(dm.train_dataloader())
    beta = instantiate(cfg.model.beta)
    beta.start(steps)
    assert cfg.trainer.max_epochs == 50
    assert beta(steps // 2) == beta.cap == 0.2  # reached by the middle of the run


def test_ml20m_keeps_liangs_ramp_and_explicit_beta_options_win():
    liang = instantiate(_compose(["dataset=ml-20m"]).model.beta)
    assert (liang.total_anneal_steps, liang.anneal_fraction) == (200000, None)
    assert _compose(["dataset=ml-20m"]).trainer.max_epochs == 200
    fixed = instantiate(_compose(["dataset=ml-1m-implicit", "beta.total_anneal_steps=20000"]).model.beta)
    assert (fixed.total_anneal_steps, fixed.anneal_fraction) == (20000, None)
    share = instantiate(_compose(["dataset=ml-20m", "beta.anneal_fraction=0.3"]).model.beta)
    assert share.anneal_fraction == 0.3
    assert _compose(["trainer.max_epochs=7"]).trainer.max_epochs == 7
