"""EASE and SLIM fit time and peak memory on real item counts (citeulike-a: 16,980 items; Gowalla: 40,981).

    python benchmarks/bench_closed_form.py [--datasets citeulike-a gowalla] [--slim-items 200] [--device cpu]

EASE: the Gram matrix once, then one λ's weights B by the current path (`cfrec.models.baselines.ease.weights`:
Cholesky + cholesky_inverse, float32) against the LU inverse it replaced (`torch.linalg.inv`), each in its own
process (its own peak RSS / GPU memory). A full λ grid costs the Gram matrix once plus one such solve and one
validation pass per λ. Where the dense I×I matrices do not fit (`check_memory`), the row says how much is needed.
SLIM: `fit_columns` (one non-negative elastic net per item, sklearn) timed on a random sample of items and
extrapolated to all items (the items are independent; SLIM spreads them over the cores with joblib threads).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import OMP_PASSIVE, emit, load_average, run_child, table


def split_of(dataset: str):
    from hydra import compose, initialize_config_dir

    import cfrec.config
    from cfrec.data.datamodule import prepare_split

    with initialize_config_dir(config_dir=str(cfrec.config.CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"dataset={dataset}", "paths.output_dir=/tmp"])
    d = {k: v for k, v in cfg.dataset.items() if k not in ("_target_", "batch_size", "eval_batch_size", "shuffle_seed")}
    return prepare_split(**d)


def child(args) -> None:
    import numpy as np
    import torch

    from cfrec.models.baselines.ease import EASEMemoryError, check_memory, gram, weights
    from cfrec.run.device import resolve_device

    split = split_of(args.dataset)
    n = split.n_items
    if args.task == "slim":
        from cfrec.models.baselines.slim import fit_columns

        x = split.train.tocsc().astype(np.float64)
        items = np.random.default_rng(0).choice(n, size=min(args.slim_items, n), replace=False)
        l1, l2 = 1.0, 1.0
        alpha, ratio = (l1 + l2) / x.shape[0], l1 / (l1 + l2)
        c, w = time.process_time(), time.perf_counter()
        fit_columns(x, items, alpha, ratio, 1000, 1e-4)
        cpu, wall = time.process_time() - c, time.perf_counter() - w
        emit({"items": n, "cpu_per_item": cpu / len(items), "wall_per_item": wall / len(items), "sample": len(items)})
        return
    device = resolve_device(args.device)
    try:
        check_memory(n, device)
    except EASEMemoryError as e:
        emit({"items": n, "refused": str(e)})
        return
    c, w = time.process_time(), time.perf_counter()
    g = gram(split.train, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    gram_s = time.perf_counter() - w
    c, w = time.process_time(), time.perf_counter()
    if args.task == "ease-chol":
        b = weights(g, args.lam)
    else:  # the former path
        diag = g.diagonal().clone()
        g.diagonal().add_(args.lam)
        b = torch.linalg.inv(g)
        g.diagonal().copy_(diag)
        b /= -b.diagonal().clone()
        b.diagonal().zero_()
    if device.type == "cuda":
        torch.cuda.synchronize()
    out = {"items": n, "gram_s": gram_s, "solve_wall": time.perf_counter() - w, "solve_cpu": time.process_time() - c,
           "checksum": float(b.double().abs().sum())}
    if device.type == "cuda":
        out["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    emit(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--task", default="ease-chol", choices=["ease-chol", "ease-lu", "slim"])
    ap.add_argument("--dataset", default="citeulike-a")
    ap.add_argument("--datasets", nargs="+", default=["citeulike-a", "gowalla"])
    ap.add_argument("--tasks", nargs="+", default=["ease-chol", "ease-lu", "slim"])
    ap.add_argument("--lam", type=float, default=500.0)
    ap.add_argument("--slim-items", type=int, default=200)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.child:
        return child(args)
    print(f"load {load_average()}", flush=True)
    rows = []
    for dataset in args.datasets:
        for task in args.tasks:
            r = run_child(__file__, ["--child", "--task", task, "--dataset", dataset, "--lam", str(args.lam),
                                     "--slim-items", str(args.slim_items), "--device", args.device],
                          timeout=7200, env_extra=OMP_PASSIVE)
            if "refused" in r:
                line = [dataset, r["items"], task, "not run: " + r["refused"], "", "", f"{r['peak_rss_mb']:.0f}"]
            elif task == "slim":
                line = [dataset, r["items"], f"slim ({r['sample']} items sampled)",
                        f"{r['wall_per_item'] * r['items']:.0f} (extrapolated, 1 thread)",
                        f"{r['cpu_per_item'] * r['items']:.0f}", "", f"{r['peak_rss_mb']:.0f}"]
            else:
                line = [dataset, r["items"], task, f"{r['solve_wall']:.1f}", f"{r['solve_cpu']:.1f}",
                        f"{r['gram_s']:.1f}", f"{r.get('gpu_peak_mb', r['peak_rss_mb']):.0f}"]
            rows.append(line)
            print(" | ".join(map(str, line)), f"(load {load_average()})", flush=True)
    print()
    print(table(rows, ["dataset", "items", "fit", "wall s (one λ)", "CPU s", "Gram s", "peak MB"]))


if __name__ == "__main__":
    main()
