"""Peak memory of Mult-VAE training + evaluation on MSD's and ML-20M's shapes (target: MSD fits in 8 GB).

MSD after Liang's preprocessing: 471,355 training users × 41,140 items, 33.6M interactions. Each config
runs in its own process: a Lightning fit of `--steps` training batches of 500 users followed by a
validation pass over 2 batches of 2,000 held-out users (CFModule's own validation: score + metrics),
with the first `--users` users of the shape (same items, same batch sizes). Its peak resident memory
(VmHWM) is reported, and the full-data peak is extrapolated by adding the CSR arrays of the users left
out (int32 index + float32 value per interaction + int64 row pointer): nothing else in the process
grows with the number of training users, since batches are sliced from CSR and models, optimiser
state, logits and eval scores depend on items and batch size only. The plain baseline (dense rows
from a DataLoader, dense first layer) is measured the same way for comparison.

    python benchmarks/bench_memory.py           # MSD (60k users) and ML-20M shapes, fp32 + bf16 + plain (~5 min)
    python benchmarks/bench_memory.py --quick   # MSD only, ours fp32 and bf16
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")

from benchmarks.common import (  # noqa: E402
    OMP_PASSIVE,
    SHAPES,
    cached_rows,
    emit,
    load_average,
    machine,
    run_child,
    split_heldout,
    table,
)

GB = 1024**3


def csr_bytes(nnz: int, n_users: int) -> int:
    return nnz * (4 + 4) + (n_users + 1) * 8


def child(args) -> None:
    import numpy as np
    import torch

    rows = cached_rows(args.shape, args.users or None)
    val_users = 4000
    end = rows.indptr[rows.shape[0] - val_users]
    train = rows.__class__(
        rows.indptr[: rows.shape[0] - val_users + 1],
        rows.indices[:end],
        rows.data[:end],
        (rows.shape[0] - val_users, rows.shape[1]),
    )
    val = rows.__class__(
        rows.indptr[-val_users - 1 :] - end, rows.indices[end:], rows.data[end:], (val_users, rows.shape[1])
    )
    fold_in, heldout = split_heldout(val, 0.2, seed=1)
    torch.manual_seed(0)
    if args.config == "plain":
        from benchmarks.models import DenseRows
        from cfrec.reference import MultVAE

        model = MultVAE(rows.shape[1])
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loader = torch.utils.data.DataLoader(DenseRows(train), batch_size=500, shuffle=True)
        for step, x in enumerate(loader):
            if step == args.steps:
                break
            loss = model.loss(x, 0.2)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        fi = fold_in.scipy()
        for start in range(0, val_users, 2000):
            x = torch.from_numpy(fi[start : start + 2000].toarray())
            with torch.no_grad():
                scores = model(x)[0].numpy()
            scores[x.numpy() > 0] = -np.inf
            np.argpartition(-scores, 100, axis=1)
    else:
        import pytorch_lightning as pl
        from torch.utils.data import DataLoader

        from benchmarks.models import mult_vae
        from cfrec.data.batches import OrderedBatches, PairBatches, RowBatches, ShuffledBatches

        model = mult_vae(rows.shape[1])
        train_rows = RowBatches(train.scipy())
        pairs = PairBatches(fold_in.scipy(), heldout.scipy())
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=1,
            precision="bf16-mixed" if args.config == "ours-bf16" else "32-true",
            max_epochs=1,
            limit_train_batches=args.steps,
            num_sanity_val_steps=0,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(
            model,
            DataLoader(train_rows, sampler=ShuffledBatches(len(train_rows), 500, 0), batch_size=None),
            DataLoader(pairs, sampler=OrderedBatches(len(pairs), 2000), batch_size=None),
        )
    emit({"config": args.config, "users": int(rows.shape[0]), "nnz": int(rows.nnz)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--users", type=int, default=60_000, help="users of MSD's shape to use (ML-20M: all)")
    ap.add_argument("--shapes", nargs="+", default=["msd", "ml-20m"], choices=["msd", "ml-20m"])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--omp-default", action="store_true")
    ap.add_argument("--child", dest="config")
    ap.add_argument("--shape", default="msd")
    args = ap.parse_args()
    if args.config:
        return child(args)
    t0 = time.time()
    configs = ("ours-fp32", "ours-bf16") if args.quick else ("ours-fp32", "ours-bf16", "plain")
    shapes = ["msd"] if args.quick else args.shapes
    plan = [(shape, args.users if shape == "msd" else None, c) for shape in shapes for c in configs]
    print(f"# machine: {machine()}; load average before: {load_average()}")
    out = []
    for shape, users, config in plan:
        cached_rows(shape, users)  # generate outside the measured process
        res = run_child(
            __file__,
            ["--child", config, "--shape", shape, "--steps", str(args.steps), "--users", str(users or 0)],
            env_extra=None if args.omp_default else OMP_PASSIVE,
        )
        full_users, items, full_nnz = SHAPES[shape]
        extra = (
            0 if res["users"] >= full_users else csr_bytes(full_nnz, full_users) - csr_bytes(res["nnz"], res["users"])
        )
        full = res["peak_rss_mb"] * 2**20 + max(extra, 0)
        out.append(
            [
                shape,
                f"{items:,}",
                f"{res['users']:,} of {full_users:,}",
                config,
                f"{res['peak_rss_mb']:.0f}",
                f"{extra / 2**20:+.0f}",
                f"{full / GB:.2f}",
                "yes" if full < 8 * GB else "NO",
            ]
        )
        print(f"#   {shape} {config}: peak RSS {res['peak_rss_mb']:.0f} MB (load {load_average()})", flush=True)
    print()
    print(
        table(
            out,
            [
                "shape",
                "items",
                "users in the run",
                "config",
                "peak RSS MB",
                "CSR of the other users MB",
                "full-data peak GB (extrapolated)",
                "< 8 GB",
            ],
        )
    )
    print(
        f"\n# {args.steps} training steps of 500 users + validation of 2 × 2,000 users per run; "
        f"load average after: {load_average()}; wall {time.time() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
