"""Train the independent Mult-VAE (`cfrec.reference`: a direct PyTorch transcription of Liang et al.'s TF
notebook, dense rows, the notebook's numpy metrics) on the same cached split as cfrec.

It shares no model or metric code with cfrec (only the split, whose construction is tested against
the notebook separately), so cfrec's Mult-VAE can be compared with it seed for seed:

    python benchmarks/reference_multvae.py dataset=ml-1m-implicit --seeds 1 2 3 --epochs 200

(`--total-anneal-steps 800` with `--epochs 100` on ML-1M matches cfrec's `beta.anneal_fraction=0.8`:
10 steps per epoch, β reaching its cap of 0.2 at 80% of training.)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from cfrec.config import CONFIG_DIR
from cfrec.reference import MultVAE, liang_metrics


def evaluate(model: MultVAE, fold_in, heldout, batch: int = 2000) -> dict[str, float]:
    model.eval()
    out: dict[str, list[np.ndarray]] = {"ndcg@100": [], "recall@20": [], "recall@50": []}
    with torch.no_grad():
        for s in range(0, fold_in.shape[0], batch):
            x = fold_in[s : s + batch].toarray()
            te = heldout[s : s + batch].toarray()
            keep = te.sum(1) > 0
            pred = model(torch.from_numpy(x))[0].numpy()
            pred[x.nonzero()] = -np.inf
            pred, te = pred[keep], te[keep]
            for name, values in liang_metrics(pred, te).items():
                out[name].append(values)
    return {k: float(np.concatenate(v).mean()) for k, v in out.items()}


def train(split, seed: int, epochs: int, total_anneal_steps: int = 200000, anneal_cap: float = 0.2) -> dict:
    torch.manual_seed(seed)
    np.random.seed(seed)
    model = MultVAE(split.n_items)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_m, n = split.train, split.train.shape[0]
    update, best, best_state = 0, -1.0, None
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        idx = np.random.permutation(n)
        for s in range(0, n, 500):
            x = torch.from_numpy(train_m[idx[s : s + 500]].toarray())
            beta = min(anneal_cap, update / total_anneal_steps)
            loss = model.loss(x, beta)
            opt.zero_grad()
            loss.backward()
            opt.step()
            update += 1
        val = evaluate(model, split.val_tr, split.val_te)["ndcg@100"]
        if val > best:
            best, best_state = val, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return {
        "seed": seed,
        "val_ndcg@100": best,
        "test": evaluate(model, split.test_tr, split.test_te),
        "seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "overrides", nargs="*", help="Hydra overrides selecting the dataset, e.g. dataset=ml-1m-implicit"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--total-anneal-steps", type=int, default=200000, help="β = min(0.2, step / this)")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose("train", overrides=args.overrides)
    dm = instantiate(cfg.dataset)
    dm.setup()
    runs = [train(dm.split, seed, args.epochs, args.total_anneal_steps) for seed in args.seeds]
    for r in runs:
        print(json.dumps(r))
    for k in ("recall@20", "recall@50", "ndcg@100"):
        v = np.array([r["test"][k] for r in runs])
        se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
        print(f"test {k}: {v.mean():.4f} ± {se:.4f} over seeds {args.seeds}")


if __name__ == "__main__":
    main()
