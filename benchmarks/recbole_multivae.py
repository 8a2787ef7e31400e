"""RecBole 1.2.1's MultiVAE on the same ML-20M-shaped users (run by bench_recbole.py in RecBole's own venv).

Not part of cfrec: RecBole needs numpy<2, pandas<2.2, scipy<1.14, so it lives in a separate virtual
environment (see docs/benchmarks.md); `recbole.quick_start` imports ray, so this drives it through
Config / create_dataset / data_preparation / Trainer, as /work/shared/notes/peers.md describes.
Writes the users' interactions as a RecBole atomic file, builds the dataset (timed separately), then times
`Trainer._train_epoch` for whole epochs (user batches of 500, 600-200 MultiVAE, dropout 0.5, β anneal).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--npz", required=True, help="a benchmarks.common cache file (indptr, indices, shape)")
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--workdir", default="/tmp/cfrec-bench/recbole")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    f = np.load(args.npz)
    indptr, indices = f["indptr"][: args.users + 1], f["indices"]
    users = np.repeat(np.arange(args.users), np.diff(indptr))
    items = indices[: indptr[-1]]
    data_dir = Path(args.workdir) / "synth"
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "synth.inter", "w") as out:
        out.write("user_id:token\titem_id:token\n")
        np.savetxt(out, np.stack([users, items], 1), fmt="%d", delimiter="\t")

    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import MultiVAE
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    config = Config(model="MultiVAE", dataset="synth", config_dict={
        "data_path": str(Path(args.workdir)), "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id",
        "load_col": {"inter": ["user_id", "item_id"]}, "train_neg_sample_args": None,
        "eval_args": {"split": {"RS": [0.98, 0.01, 0.01]}, "order": "RO", "group_by": "user", "mode": "full"},
        "train_batch_size": 500, "eval_batch_size": 2000, "epochs": args.epochs, "eval_step": 1000,
        "latent_dimension": 200, "mlp_hidden_size": [600], "dropout_prob": 0.5, "anneal_cap": 0.2,
        "total_anneal_steps": 200000, "learning_rate": 1e-3, "device": "cpu", "use_gpu": False,
        "show_progress": False, "state": "WARNING", "seed": 0, "reproducibility": False, "checkpoint_dir": args.workdir,
    })
    init_seed(config["seed"], config["reproducibility"])
    t0 = time.perf_counter()
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    prep_s = time.perf_counter() - t0
    model = MultiVAE(config, train_data.dataset).to(config["device"])
    trainer = Trainer(config, model)
    epochs = []
    cpu = []
    for epoch in range(args.epochs):
        t, c = time.perf_counter(), time.process_time()
        trainer._train_epoch(train_data, epoch_idx=epoch, show_progress=False)
        epochs.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    n_batches = len(train_data)
    print("RESULT " + json.dumps({
        "config": "recbole", "users": int(dataset.user_num - 1), "items": int(dataset.item_num - 1),
        "interactions": int(len(dataset.inter_feat)), "prep_s": prep_s, "epoch_s": epochs, "epoch_cpu_s": cpu,
        "batches": n_batches, "step_s": float(np.median(epochs)) / n_batches,
        "cpu_step_s": float(np.median(cpu)) / n_batches, "threads": torch.get_num_threads(),
        "peak_rss_mb": peak_rss_mb(), "versions": {"torch": torch.__version__, "numpy": np.__version__}}), flush=True)


if __name__ == "__main__":
    main()
