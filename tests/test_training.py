"""cfrec.run.training and train.py: what one run writes, the checkpoint contents resume relies on, failure
records, and the pieces of exact resume (per-epoch seeds, the datamodule's epoch state)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

import cfrec.config
from cfrec.data.datamodule import CFDataModule
from cfrec.models.baselines.popularity import Popularity
from cfrec.run.callbacks import epoch_seed
from cfrec.run.checkpoints import CHECKPOINT_KEY, fingerprint_changes, run_fingerprint
from cfrec.run.per_user import read_per_user
from cfrec.run.training import check_tested_epoch, describe_error, record_failure, run
from tests.conftest import compose_train

TINY = ["debug=default"]  # conf/debug/default.yaml: 200 synthetic users × 60 items, 20 + 20 held out, batches of 50
SMALL_VAE = ["debug=vae"]  # the same, with q [I→32→2·8], p [8→32→I]


def config(out: Path, *overrides: str) -> DictConfig:
    return compose_train(*overrides, out=out, cache=out.parent / "cache")


def test_neural_run_writes_metrics_and_resumable_checkpoints(tmp_path):
    out = tmp_path / "run"
    metrics = run(config(out, *SMALL_VAE, "trainer.max_epochs=2"), out, {"model": "mult"})
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["status"] == "ok" and on_disk["model"] == "mult" and on_disk["epochs"] == 2
    assert on_disk["test"] == metrics["test"] and on_disk["test"]["n_users"] == 20
    assert [h["epoch"] for h in on_disk["history"]] == [0, 1] and on_disk["resumed_from"] is None
    assert Path(on_disk["best_checkpoint"]).exists() and on_disk["best_epoch"] in (0, 1)
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["epoch"] == 1
    assert last[CHECKPOINT_KEY]["history"] == on_disk["history"]
    assert last[CHECKPOINT_KEY]["fingerprint"]["model"]["lr"] == 0.001
    assert last["CFDataModule"] == {"train_epoch": 2}  # the epoch a resumed run continues with
    assert (out / "metrics.json").stat().st_mode & 0o044  # readable by others, like any file (umask)


def test_closed_form_run(tmp_path):
    out = tmp_path / "run"
    metrics = run(config(out, "model=popularity"), out, {"model": "popularity"})
    assert metrics["status"] == "ok" and metrics["test"]["n_users"] == 20
    assert not (out / "checkpoints").exists()
    assert_per_user_matches(out, metrics)


def test_a_finished_closed_form_fit_is_kept_on_rerun_and_refitted_when_its_settings_change(tmp_path, monkeypatch):
    out = tmp_path / "run"
    first = run(config(out, "model=popularity"), out, {"model": "popularity"})
    fits = []
    fit = Popularity.fit
    monkeypatch.setattr(Popularity, "fit", lambda self, split: fits.append(1) or fit(self, split))
    assert run(config(out, "model=popularity"), out, {"model": "popularity"}) == json.loads(
        (out / "metrics.json").read_text()) and fits == []
    assert first["test"] == json.loads((out / "metrics.json").read_text())["test"]
    run(config(out, "model=popularity", "export.top_k=5"), out, {"model": "popularity"})  # no recommendations.csv yet
    assert fits == [1] and (out / "recommendations.csv").is_file()
    run(config(out, "model=popularity", "seed=2"), out, {"model": "popularity"})  # another configuration
    assert fits == [1, 1] and json.loads((out / "metrics.json").read_text())["seed"] == 2


def assert_per_user_matches(out: Path, metrics: dict) -> None:
    """per_user.csv names the split's validation and test users and averages to metrics.json's figures."""
    frame = read_per_user(out / "per_user.csv")
    split = CFDataModule(**{k: v for k, v in config(out).dataset.items() if k != "_target_"})
    split.setup()
    for stage in ("val", "test"):
        rows = frame[frame["split"] == stage]
        assert len(rows) == metrics[stage]["n_users"]
        assert set(rows["user"]) <= set(split.split.user_ids(stage).astype(str))
        for name in ("recall@20", "recall@50", "ndcg@100"):
            assert rows[name].mean() == pytest.approx(metrics[stage][name], rel=1e-12)


def test_neural_run_writes_per_user_metrics_of_the_tested_epoch(tmp_path):
    out = tmp_path / "run"
    metrics = run(config(out, *SMALL_VAE, "trainer.max_epochs=2"), out, {"model": "mult"})
    assert metrics["stopped_early"] is False
    assert_per_user_matches(out, metrics)


def test_early_stopping_ends_a_run_patience_epochs_after_its_best(tmp_path):
    out = tmp_path / "run"
    # lr = 0: validation NDCG@100 never improves on epoch 0, so the run stops after epoch 0 + patience
    # (the plain rule: wait_for_beta=false counts patience while β still anneals)
    metrics = run(config(out, *SMALL_VAE, "model.lr=0.0", "trainer.max_epochs=20",
                         "callbacks.early_stopping.patience=3", "callbacks.early_stopping.wait_for_beta=false"),
                  out, {"model": "mult"})
    assert metrics["best_epoch"] == 0 and metrics["epochs"] == 4 and metrics["stopped_early"] is True
    assert json.loads((out / "metrics.json").read_text())["stopped_early"] is True


def test_an_annealed_run_is_not_stopped_before_its_cap_epoch_plus_patience(tmp_path):
    out = tmp_path / "run"
    # 160 training users in batches of 50: 4 updates an epoch; β = step / 40 reaches the cap 0.25 at step 10,
    # within epoch index 2 (steps 8-11), so index 3 is the first epoch trained entirely at the cap. With lr = 0
    # validation peaks at epoch 0; patience 3 then counts epochs 3, 4, 5 and the run stops after 6 epochs, not 4.
    metrics = run(config(out, *SMALL_VAE, "model.lr=0.0", "trainer.max_epochs=20", "beta.cap=0.25",
                         "beta.total_anneal_steps=40", "callbacks.early_stopping.patience=3"), out, {"model": "mult"})
    assert metrics["beta_cap_epoch"] == 3
    assert metrics["best_epoch"] == 0 and metrics["stopped_early"] is True
    assert metrics["epochs"] == metrics["beta_cap_epoch"] + 3


def test_min_epochs_is_a_minimum_budget_for_early_stopping(tmp_path):
    out = tmp_path / "run"
    # β = 0 does not ramp (nothing to wait for); lr = 0 peaks at epoch 0, patience 2 alone would stop after 3
    metrics = run(config(out, *SMALL_VAE, "model.lr=0.0", "trainer.max_epochs=20", "beta=zero",
                         "callbacks.early_stopping.patience=2", "callbacks.early_stopping.min_epochs=7"),
                  out, {"model": "mult"})
    assert metrics["beta_cap_epoch"] is None
    assert metrics["epochs"] == 7 and metrics["stopped_early"] is True


def test_metrics_name_the_code_libraries_precision_and_device_that_made_them(tmp_path):
    import subprocess

    import pytorch_lightning as pl

    out = tmp_path / "run"
    run(config(out, *SMALL_VAE, "trainer.precision=32-true"), out, {"model": "mult"})
    made = json.loads((out / "metrics.json").read_text())["provenance"]
    assert made["torch"] == torch.__version__ and made["lightning"] == pl.__version__
    assert made["precision"] == "32-true" and made["device"]
    root = Path(cfrec.config.PROJECT_ROOT)
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:  # a git checkout: the commit and whether the code differs from it
        assert made["code"]["commit"] == head.stdout.strip() and isinstance(made["code"]["dirty"], bool)
    else:
        assert made["code"]["commit"] is None and made["code"]["version"]
    run(config(tmp_path / "fit", "model=popularity"), tmp_path / "fit", {"model": "popularity"})
    fitted = json.loads((tmp_path / "fit" / "metrics.json").read_text())["provenance"]
    assert fitted["precision"] is None and fitted["code"] == made["code"]


def test_output_bias_starts_at_the_items_training_log_odds(tmp_path):
    out = tmp_path / "run"
    # lr = 0 keeps the initial weights, so the checkpoint holds the bias as it started
    run(config(out, *SMALL_VAE, "model.lr=0.0", "trainer.max_epochs=1", "model.output_bias=log_odds"), out,
        {"model": "mult"})
    dm = CFDataModule(**{k: v for k, v in config(out).dataset.items() if k != "_target_"})
    dm.setup()
    train = dm.split.train.toarray() > 0
    n = train.shape[0]
    p = np.clip(train.mean(0), 0.5 / n, 1 - 0.5 / n)
    bias = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]["decoder.2.bias"]
    np.testing.assert_allclose(bias.numpy(), np.log(p / (1 - p)), rtol=1e-6)
    with pytest.raises(Exception, match="model.output_bias must be one of"):  # wrapped by Hydra
        run(config(tmp_path / "bad", *SMALL_VAE, "model.output_bias=logodds"), tmp_path / "bad", {"model": "mult"})


def test_sivae_run_records_the_spread_of_psi_beside_its_validation_metrics(tmp_path):
    out = tmp_path / "run"
    metrics = run(config(out, "model=sivae", *SMALL_VAE, "model.encoder.noise_dims=[4]", "model.encoder.layer_dim=16",
                         "model.encoder.covariance=noise", "trainer.max_epochs=2"), out, {"model": "sivae"})
    assert metrics["val"]["psi_spread"] > 0
    assert all(h["psi_spread"] > 0 for h in metrics["history"])


def test_record_failure_keeps_an_earlier_success_and_never_raises(tmp_path):
    cfg = config(tmp_path)
    (tmp_path / "metrics.json").write_text(json.dumps({"status": "ok", "test": {"ndcg@100": 0.5}}))
    record_failure(cfg, tmp_path, {"model": "mult"}, ValueError("boom"))
    failed = json.loads((tmp_path / "metrics.json").read_text())
    assert failed["status"] == "failed" and failed["error"] == "ValueError: boom"
    assert "ValueError" in failed["traceback"]
    assert failed["dataset"] == "synthetic" and failed["config"]["seed"] == 98765
    assert json.loads((tmp_path / "metrics.previous.json").read_text())["test"] == {"ndcg@100": 0.5}
    record_failure(cfg, tmp_path / "metrics.json" / "not-a-dir", {}, ValueError("x"))  # unwritable: logs only


def test_failure_record_names_the_root_cause_behind_hydras_instantiation_error(tmp_path, monkeypatch):
    # a model package that imports a dependency this machine lacks, as `implicit` was on a bare GPU image
    (tmp_path / "pkg_with_missing_dep").mkdir()
    (tmp_path / "pkg_with_missing_dep" / "__init__.py").write_text("import cfrec_absent_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "run"
    cfg = config(out, "model=popularity", "model._target_=pkg_with_missing_dep.Model")
    with pytest.raises(Exception) as raised:
        run(cfg, out, {"model": "popularity"})
    record_failure(cfg, out, {"model": "popularity"}, raised.value)
    error = json.loads((out / "metrics.json").read_text())["error"]
    assert error.startswith("InstantiationException: Error locating target 'pkg_with_missing_dep.Model'")
    assert error.endswith("(caused by ModuleNotFoundError: No module named 'cfrec_absent_dependency')")
    assert describe_error(ValueError("plain")) == "ValueError: plain"


def test_train_py_single_run_failure_exits_nonzero_and_records(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("cfrec_train_entry_point", cfrec.config.PROJECT_ROOT / "train.py")
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    out = tmp_path / "run"
    monkeypatch.setattr(sys, "argv", ["train.py", f"hydra.run.dir={out}", f"paths.cache_dir={tmp_path / 'cache'}",
                                      *TINY, "dataset.heldout_users=100000"])
    try:
        with pytest.raises(SystemExit) as exit_:
            entry.main()
    finally:
        GlobalHydra.instance().clear()
    assert exit_.value.code == 2  # a user mistake (cfrec.errors.UserError): one line on stderr, exit status 2
    record = json.loads((out / "metrics.json").read_text())
    assert record["status"] == "failed" and "dataset.heldout_users=100000" in record["error"]


def test_a_tested_epoch_that_is_not_the_best_validation_epoch_is_flagged():
    history = [{"epoch": e, "ndcg@100": v} for e, v in enumerate((0.30, 0.42, 0.41, 0.42))]
    assert check_tested_epoch(history, 1, "ndcg@100") is None and check_tested_epoch(history, 3, "ndcg@100") is None
    assert "epoch 2 (ndcg@100 0.4100), not the best validation epoch 1 (0.4200)" in check_tested_epoch(
        history, 2, "ndcg@100")
    assert check_tested_epoch(history, 0, "ndcg@100", mode="min") is None


def test_epoch_seeds_depend_on_seed_and_epoch_only():
    assert epoch_seed(98765, 3) == epoch_seed(98765, 3)
    assert len({epoch_seed(s, e) for s in (1, 2) for e in range(50)}) == 100
    assert 0 <= epoch_seed(2**40, 0) < 2**32 and epoch_seed(1, 0, rank=1) != epoch_seed(1, 0)


def test_fingerprint_ignores_paths_eval_batch_size_and_budget_only(tmp_path):
    counts = {"train": {"users": 1}}
    base = run_fingerprint(config(tmp_path), counts)
    moved = config(tmp_path, "dataset.eval_batch_size=7", "paths.cache_dir=/elsewhere", "trainer.max_epochs=9",
                   "dataset.budget.epochs=9", "+dataset.budget.patience=5")
    assert run_fingerprint(moved, counts) == base
    for override in ("model.lr=0.01", "seed=1", "dataset.batch_size=7", "beta.cap=0.3",
                     "+dataset.budget.anneal_steps=9"):
        assert run_fingerprint(config(tmp_path, override), counts) != base, override
    assert run_fingerprint(config(tmp_path), {"train": {"users": 2}}) != base


def test_fingerprint_changes_name_each_setting_and_let_a_new_null_option_pass():
    stored = {"model": {"lr": 0.001, "encoder": {"dropout": 0.5}}, "seed": 1}
    assert fingerprint_changes(stored, {**stored, "model": {**stored["model"], "output_bias": None}}) == []
    older = {**stored, "dataset": {"budget": {"epochs": 300}}}  # written when the budget was fingerprinted
    assert fingerprint_changes(older, {**stored, "dataset": {}}) == []
    changed = {"model": {"lr": 0.01, "encoder": {"dropout": 0.5}, "output_bias": "log_odds"}, "seed": 1}
    assert fingerprint_changes(stored, changed) == ["model.lr: 0.001 -> 0.01",
                                                    "model.output_bias: None -> 'log_odds'"]


def test_datamodule_restores_the_epoch_its_loader_starts_at(tmp_path):
    dm = CFDataModule(batch_size=50, name="synthetic", format="synthetic", heldout_users=20,
                      cache_dir=tmp_path, synthetic={"n_users": 200, "n_items": 60})
    dm.setup()
    assert dm.state_dict() == {"train_epoch": 0} and dm.train_dataloader().sampler.epoch == 0
    dm.load_state_dict({"train_epoch": 3})
    loader = dm.train_dataloader()
    assert loader.sampler.epoch == 3
    first = next(iter(loader)).users.numpy()
    order = np.random.default_rng([dm.shuffle_seed, 3]).permutation(160)[:50]
    np.testing.assert_array_equal(first, order)
    before = torch.random.get_rng_state()
    iter(loader)  # its own generator: building an iterator leaves the global one alone
    assert torch.equal(before, torch.random.get_rng_state())
    dm.teardown("fit")
    assert dm.train_dataloader().sampler.epoch == 0
