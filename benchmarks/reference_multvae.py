"""An independent Mult-VAE: a direct PyTorch transcription of Liang et al.'s TF notebook (dense rows,
numpy metrics copied from the notebook), trained on the same cached split as cfrec.

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
from torch import nn

from cfrec.config import CONFIG_DIR


def ndcg_binary_at_k_batch(x_pred: np.ndarray, heldout: np.ndarray, k: int = 100) -> np.ndarray:
    """The notebook's NDCG_binary_at_k_batch."""
    batch = x_pred.shape[0]
    idx_topk_part = np.argpartition(-x_pred, k, axis=1)
    topk_part = x_pred[np.arange(batch)[:, None], idx_topk_part[:, :k]]
    idx_part = np.argsort(-topk_part, axis=1)
    idx_topk = idx_topk_part[np.arange(batch)[:, None], idx_part]
    tp = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (heldout[np.arange(batch)[:, None], idx_topk] * tp).sum(axis=1)
    idcg = np.array([tp[: min(n, k)].sum() for n in (heldout > 0).sum(axis=1)])
    return dcg / idcg


def recall_at_k_batch(x_pred: np.ndarray, heldout: np.ndarray, k: int) -> np.ndarray:
    """The notebook's Recall_at_k_batch."""
    idx = np.argpartition(-x_pred, k, axis=1)
    pred = np.zeros_like(x_pred, dtype=bool)
    pred[np.arange(x_pred.shape[0])[:, None], idx[:, :k]] = True
    true = heldout > 0
    return np.logical_and(true, pred).sum(axis=1).astype(np.float32) / np.minimum(k, true.sum(axis=1))


class MultVAE(nn.Module):
    """q: I→600→2·200, p: 200→600→I, tanh; L2-normalised input with dropout 0.5 (the notebook's MultiVAE)."""

    def __init__(self, n_items: int):
        super().__init__()
        self.q1, self.q2 = nn.Linear(n_items, 600), nn.Linear(600, 400)
        self.p1, self.p2 = nn.Linear(200, 600), nn.Linear(600, n_items)
        for layer in (self.q1, self.q2, self.p1, self.p2):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.trunc_normal_(layer.bias, std=0.001)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.drop(nn.functional.normalize(x, dim=1))
        mu, logvar = self.q2(torch.tanh(self.q1(h))).chunk(2, dim=1)
        z = mu + self.training * torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self.p2(torch.tanh(self.p1(z)))
        kl = torch.mean(torch.sum(0.5 * (-logvar + torch.exp(logvar) + mu**2 - 1), dim=1))
        return logits, kl


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
            out["ndcg@100"].append(ndcg_binary_at_k_batch(pred, te, 100))
            out["recall@20"].append(recall_at_k_batch(pred, te, 20))
            out["recall@50"].append(recall_at_k_batch(pred, te, 50))
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
            logits, kl = model(x)
            neg_ll = -torch.mean(torch.sum(torch.log_softmax(logits, 1) * x, dim=1))
            loss = neg_ll + beta * kl
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
