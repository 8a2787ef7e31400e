"""DDP: batch samplers shard users by rank, and a 2-process CPU run reports the metrics of all held-out users."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from cfrec.config import CONFIG_DIR, PROJECT_ROOT
from cfrec.data.batches import OrderedBatches, ShuffledBatches


def test_training_batches_of_the_ranks_are_disjoint_and_equal_in_number():
    ranks = [list(ShuffledBatches(1050, 100, seed=3, rank=r, world=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 5  # 11 batches: the 11th is skipped this epoch
    seen = np.concatenate([b for r in ranks for b in r])
    assert len(seen) == len(np.unique(seen)) == 1000


def test_evaluation_batches_of_the_ranks_cover_every_user_once():
    for n, batch in ((60, 2000), (101, 10)):
        ranks = [list(OrderedBatches(n, batch, rank=r, world=2)) for r in range(2)]
        assert all(len(r) >= 1 for r in ranks)
        assert sorted(np.concatenate([b for r in ranks for b in r]).tolist()) == list(range(n))


@pytest.mark.slow
def test_two_process_ddp_run_reports_the_single_process_metrics_of_its_best_checkpoint(tmp_path):
    data = ["dataset.synthetic.n_users=2200", "dataset.heldout_users=100", "dataset.eval_batch_size=30",
            f"dataset.cache_dir={tmp_path / 'cache'}"]
    out = tmp_path / "run"
    subprocess.run([sys.executable, str(PROJECT_ROOT / "train.py"), "trainer=ddp", "trainer.accelerator=cpu",
                    "trainer.devices=2", "trainer.max_epochs=2", "logger=none", "export.top_k=100", *data,
                    f"hydra.run.dir={out}"],
                   check=True, cwd=tmp_path, capture_output=True, timeout=300)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["test"]["n_users"] == 100
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose("train", overrides=data)
    dm = instantiate(cfg.dataset)
    dm.setup()
    model = instantiate(cfg.model, n_items=dm.n_items, _convert_="all")
    model.load_state_dict(torch.load(Path(metrics["best_checkpoint"]), weights_only=False)["state_dict"])
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    trainer.test(model, datamodule=dm, verbose=False)
    assert model.results["test"]["ndcg@100"] == pytest.approx(metrics["test"]["ndcg@100"], abs=1e-6)
    # the two ranks' test lists are gathered in row order: every test user, as one process has them
    users = pd.read_csv(out / "recommendations.csv", dtype={"user": str})["user"]
    assert users.drop_duplicates().tolist() == np.asarray(dm.split.user_ids("test")).astype(str).tolist()
    assert sum(q["n_users"] for q in metrics["by_activity"]["test"]) == 100
