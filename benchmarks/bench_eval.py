"""Evaluation of 10,000 held-out users over ML-20M's 20,108 items: Mult-VAE scores + Recall@20/50, NDCG@100.

Held-out users are 10,000 users of the ML-20M-shaped generator, each row split 80/20 into fold-in and
held-out items at random (Liang's protocol). Batches of 2,000 users (cfrec's eval_batch_size).

    python benchmarks/bench_eval.py           # 3 rounds (~2 min here)
    python benchmarks/bench_eval.py --quick   # 1 round, no top-k table

Configurations, each in its own process, rotating order per round:
  plain      dense fold-in rows → a plain PyTorch Mult-VAE forward (fp32) → the reference notebook's numpy
             metrics (fold-in masked to −inf, np.argpartition per metric then sort), as Liang et al.
  ours-fp32  cfrec's batched path: sparse CSR fold-in (as PairBatches serves it) → VAE.score →
             cfrec.metrics.ranking_metrics → summarize
  ours-bf16  the same inside torch.autocast("cpu", bfloat16), i.e. what trainer.precision=bf16-mixed does
Then a top-k table: ways to take the top 100 of 2,000 × 20,108 scores.
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
    cached_rows,
    emit,
    load_average,
    machine,
    median,
    run_child,
    split_heldout,
    table,
)

N_USERS, BATCH = 10_000, 2000
CONFIGS = ("plain", "ours-fp32", "ours-bf16")


def heldout_users():
    rows = cached_rows("ml-20m")
    end = rows.indptr[N_USERS]
    first = rows.__class__(rows.indptr[: N_USERS + 1], rows.indices[:end], rows.data[:end], (N_USERS, rows.shape[1]))
    return split_heldout(first, 0.2, seed=1)


def child(args) -> None:
    import contextlib

    import numpy as np
    import torch

    from benchmarks.models import mult_vae
    from cfrec.reference import MultVAE, liang_metrics

    if args.threads:
        torch.set_num_threads(args.threads)
    fold_in, heldout = heldout_users()
    fi, ho = fold_in.scipy(), heldout.scipy()
    torch.manual_seed(0)
    score_s = metric_s = 0.0
    per_user: dict[str, list] = {}
    if args.config == "plain":
        model = MultVAE(fi.shape[1]).eval()
        cpu0 = time.process_time()
        for start in range(0, N_USERS, BATCH):
            t0 = time.perf_counter()
            x = torch.from_numpy(fi[start : start + BATCH].toarray())
            with torch.no_grad():
                scores = model(x)[0].numpy()
            t1 = time.perf_counter()
            scores[x.numpy() > 0] = -np.inf
            for name, v in liang_metrics(scores, ho[start : start + BATCH].toarray()).items():
                per_user.setdefault(name, []).append(v)
            score_s, metric_s = score_s + t1 - t0, metric_s + time.perf_counter() - t1
        summary = {k: float(np.nanmean(np.concatenate(v))) for k, v in per_user.items()}
    else:
        from cfrec.data.sparse import to_torch_csr
        from cfrec.metrics import ranking_metrics, summarize

        model = mult_vae(fi.shape[1]).eval()
        amp = (
            (lambda: torch.autocast("cpu", dtype=torch.bfloat16))
            if args.config == "ours-bf16"
            else contextlib.nullcontext
        )
        cpu0 = time.process_time()
        for start in range(0, N_USERS, BATCH):
            t0 = time.perf_counter()
            f, h = to_torch_csr(fi[start : start + BATCH]), to_torch_csr(ho[start : start + BATCH])
            with amp(), torch.no_grad():
                scores = model.score(f)
                t1 = time.perf_counter()
                for name, v in ranking_metrics(scores, f, h).items():
                    per_user.setdefault(name, []).append(v)
            score_s, metric_s = score_s + t1 - t0, metric_s + time.perf_counter() - t1
        t2 = time.perf_counter()
        summary = summarize({k: torch.cat(v) for k, v in per_user.items()})
        metric_s += time.perf_counter() - t2
    emit(
        {
            "config": args.config,
            "score_s": score_s,
            "metric_s": metric_s,
            "total_s": score_s + metric_s,
            "cpu_s": time.process_time() - cpu0,
            "ndcg": summary["ndcg@100"],
            "threads": torch.get_num_threads(),
        }
    )


def topk_table(threads: int) -> str:
    """Top 100 of 2,000 × 20,108 float32 scores: torch.topk and alternatives (this process)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(BATCH, 20_108, generator=g)
    s16 = scores.bfloat16()
    cands = {
        "torch.topk(k=100, sorted)": lambda: torch.topk(scores, 100, dim=1).indices,
        "torch.topk ×3 (k=20, 50, 100; before)": lambda: [torch.topk(scores, k, dim=1).indices for k in (20, 50, 100)],
        "torch.topk on bf16 scores": lambda: torch.topk(s16, 100, dim=1).indices,
        "torch.sort (full), first 100": lambda: torch.sort(scores, dim=1, descending=True).indices[:, :100],
        "torch.argsort(stable), first 100": lambda: torch.argsort(scores, dim=1, descending=True, stable=True)[:, :100],
        "np.argpartition + argsort (Liang)": lambda: _np_top(scores.numpy(), 100),
        "torch.topk, 4 row chunks": lambda: torch.cat([torch.topk(c, 100, dim=1).indices for c in scores.chunk(4)]),
    }
    times = {k: [] for k in cands}
    for f in cands.values():
        f()
    for _ in range(3):
        for k, f in cands.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    base = median(times["torch.topk(k=100, sorted)"])
    rows = [
        [k, f"{median(v) * 1000:.0f}", f"{median(v) / base:.2f}", f"{median(v) * N_USERS / BATCH:.2f}"]
        for k, v in times.items()
    ]
    return table(rows, ["top-100 of 2,000 × 20,108", "ms (median of 3)", "× torch.topk", "s for 10,000 users"])


def _np_top(x, k):
    import numpy as np

    part = np.argpartition(-x, k, axis=1)[:, :k]
    top = np.take_along_axis(x, part, 1)
    return np.take_along_axis(part, np.argsort(-top, axis=1), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--omp-default", action="store_true")
    ap.add_argument("--child", dest="config")
    args = ap.parse_args()
    if args.config:
        return child(args)
    rounds = args.rounds or (1 if args.quick else 3)
    t0 = time.time()
    fold_in, heldout = heldout_users()
    print(
        f"# {N_USERS:,} held-out users × {fold_in.shape[1]:,} items: {fold_in.nnz:,} fold-in, {heldout.nnz:,} "
        f"held-out interactions; batches of {BATCH}"
    )
    print(
        f"# machine: {machine()}; load average before: {load_average()}; OpenMP wait policy in the children: "
        f"{'default' if args.omp_default else 'PASSIVE'}"
    )
    results: dict[str, list[dict]] = {c: [] for c in args.configs}
    for r in range(rounds):
        order = args.configs[r % len(args.configs) :] + args.configs[: r % len(args.configs)]
        for config in order:
            res = run_child(
                __file__,
                ["--child", config, "--threads", str(args.threads)],
                env_extra=None if args.omp_default else OMP_PASSIVE,
            )
            results[config].append(res)
            print(
                f"#   round {r + 1}: {config:10s} {res['total_s']:.2f} s, CPU {res['cpu_s']:.2f} s "
                f"(score {res['score_s']:.2f}, metrics "
                f"{res['metric_s']:.2f}), NDCG@100 {res['ndcg']:.4f}, peak RSS {res['peak_rss_mb']:.0f} MB "
                f"(load {load_average()})",
                flush=True,
            )
    base = median([x["total_s"] for x in results.get("plain", [])])
    rows = []
    for config, res in results.items():
        total = median([x["total_s"] for x in res])
        rows.append(
            [
                config,
                f"{total:.2f}",
                f"{median([x['cpu_s'] for x in res]):.2f}",
                f"{median([x['score_s'] for x in res]):.2f}",
                f"{median([x['metric_s'] for x in res]):.2f}",
                f"{base / total:.2f}×" if base == base else "n/a",
                f"{max(x['peak_rss_mb'] for x in res):.0f}",
                f"{res[0]['ndcg']:.4f}",
                " / ".join(f"{x['total_s']:.2f}" for x in res),
            ]
        )
    print()
    print(
        table(
            rows,
            [
                "config",
                "wall s for 10k users (median)",
                "CPU s (all threads)",
                "scoring s",
                "metrics s",
                "speed-up vs plain",
                "peak RSS MB",
                "NDCG@100 (untrained)",
                "per round s",
            ],
        )
    )
    if not args.quick:
        print()
        print(topk_table(args.threads))
    print(f"\n# {rounds} round(s); load average after: {load_average()}; wall {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
