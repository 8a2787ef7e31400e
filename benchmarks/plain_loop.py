"""The plain baseline of `bench_end_to_end.py`: Liang's Mult-VAE trained and evaluated the obvious way.

Same split (cfrec's cached `split.npz`, read with numpy), same model (600-200-600, tanh, dropout 0.5, Adam
1e-3, β annealed to 0.2 over 200,000 steps, batches of 500 users), same per-epoch validation (all
validation users, batches of 2,000, best epoch kept) and the same test of the best epoch at the end, written
as a straightforward PyTorch loop: a DataLoader of dense rows (default collate, shuffle, no workers), a
dense first layer, `log_softmax`, default Adam, fp32, and the reference notebook's numpy metrics
(`cfrec.reference.liang_metrics`). Prints one `RESULT {json}` line.

    python benchmarks/plain_loop.py --split <cache dir>/split.npz --epochs 20
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

T0 = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import torch  # noqa: E402

from benchmarks.common import emit  # noqa: E402
from benchmarks.models import DenseRows  # noqa: E402
from cfrec.reference import MultVAE, liang_metrics  # noqa: E402


def load(path: Path) -> dict[str, sp.csr_matrix]:
    with np.load(path) as z:
        return {part: sp.csr_matrix((np.ones(len(z[f"{part}_indices"]), np.float32), z[f"{part}_indices"],
                                     z[f"{part}_indptr"]), shape=tuple(z[f"{part}_shape"]))
                for part in ("train", "val_tr", "val_te", "test_tr", "test_te")}


def evaluate(model: MultVAE, fold_in: sp.csr_matrix, heldout: sp.csr_matrix, batch: int = 2000) -> float:
    model.eval()
    ndcg = []
    with torch.no_grad():
        for start in range(0, fold_in.shape[0], batch):
            x = fold_in[start:start + batch].toarray()
            scores = model(torch.from_numpy(x))[0].numpy()
            scores[x.nonzero()] = -np.inf
            ndcg.append(liang_metrics(scores, heldout[start:start + batch].toarray())["ndcg@100"])
    model.train()
    values = np.concatenate(ndcg)
    return float(np.nanmean(values))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--split", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=98765)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    data = load(args.split)
    train = data["train"]
    model = MultVAE(train.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(DenseRows(train), batch_size=500, shuffle=True)
    step, best, best_state, best_epoch = 0, -1.0, None, -1
    fit_start = time.perf_counter()
    for epoch in range(args.epochs):
        for x in loader:
            loss = model.loss(x, min(0.2, step / 200_000))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        ndcg = evaluate(model, data["val_tr"], data["val_te"])
        if ndcg > best:
            best, best_state, best_epoch = ndcg, copy.deepcopy(model.state_dict()), epoch
    model.load_state_dict(best_state)
    test = evaluate(model, data["test_tr"], data["test_te"])
    emit({"val_ndcg": best, "test_ndcg": test, "best_epoch": best_epoch, "steps": step,
          "fit_s": time.perf_counter() - fit_start, "process_s": time.perf_counter() - T0})


if __name__ == "__main__":
    main()
