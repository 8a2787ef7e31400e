"""Mult-VAE training on ML-20M's shape: cfrec (fp32 and bf16-mixed) against a plain PyTorch Mult-VAE.

Data: 116,677 training users × 20,108 items, ~9.9M interactions with Zipf item popularity and log-normal
user activity (`benchmarks.common.long_tail_rows`, cached after the first run). Batch 500 users, Adam 1e-3,
600-200-600, dropout 0.5, β annealing: one epoch is 234 steps.

    python benchmarks/bench_train_epoch.py            # 20 timed steps per config, 2 rounds (~5 min here)
    python benchmarks/bench_train_epoch.py --quick    # 10 steps, 1 round
    python benchmarks/bench_train_epoch.py --device cuda --configs plain ours-fp32 ours-bf16

Configurations, each in its own process (its own peak memory), run in rotating order round after round:
  plain      the straightforward implementation: a DataLoader of dense rows (default collate, shuffle,
             no workers), dense first layer, log_softmax, default Adam, fp32 (`cfrec.reference.MultVAE`)
  ours-fp32  cfrec.models.vae.VAE in a Lightning Trainer fed as CFDataModule feeds it (CSR rows sliced
             per batch, no workers), precision 32-true
  ours-bf16  the same with precision bf16-mixed
A step's time is the wall time between the ends of consecutive steps (so it includes fetching the batch);
the first `--warmup` steps are dropped; the epoch figure is the median step × 234 (extrapolated).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")

from benchmarks.common import OMP_PASSIVE, SHAPES, cached_rows, emit, load_average, machine, median, run_child, table  # noqa: E402

BATCH = 500
CONFIGS = ("plain", "ours-fp32", "ours-bf16")
EXTRA_CONFIGS = ("sivae-fp32", "sivae-bf16", "floor-fp32", "floor-bf16", "ours-fp32-mmap", "ours-bf16-mmap")
# ours-*-mmap: ours without `cfrec.run.callbacks.reuse_freed_memory` (glibc's default: big blocks mmapped per use),
# which train.py's default callbacks apply and ours-* here apply too
# floor-*: the step's unavoidable FLOPs only, the decoder's three (500 × 600) · (600 × I) products (forward,
# input gradient, weight gradient: 36 GFLOP a step on ML-20M's shape) at the rate this machine runs them;
# sivae-*: the VAE with SIVAE's encoder (benchmarks/bench_sivae.py)


def child(args) -> None:
    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.config.startswith(("ours", "sivae", "floor")) and not args.config.endswith("-mmap"):
        from cfrec.run.callbacks import reuse_freed_memory

        reuse_freed_memory()
    rows = cached_rows(args.shape, args.users)
    n_steps = args.warmup + args.steps
    ends: list[float] = []
    cpu_ends: list[float] = []
    torch.manual_seed(0)
    if args.config.startswith("floor"):
        dtype = torch.bfloat16 if args.config.endswith("bf16") else torch.float32
        n_items, hidden = rows.shape[1], 600
        h = torch.randn(BATCH, hidden, dtype=dtype, device=args.device)
        w = torch.randn(n_items, hidden, dtype=dtype, device=args.device)
        b = torch.randn(n_items, dtype=dtype, device=args.device)
        g = torch.randn(BATCH, n_items, dtype=dtype, device=args.device)
        for _ in range(n_steps):
            torch.addmm(b, h, w.t())  # forward
            g @ w  # input gradient
            g.t() @ h  # weight gradient
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            ends.append(time.perf_counter())
            cpu_ends.append(time.process_time())
        data_path = "none (products only)"
    elif args.config == "plain":
        from benchmarks.models import DenseRows
        from cfrec.reference import MultVAE

        model = MultVAE(rows.shape[1]).to(args.device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loader = torch.utils.data.DataLoader(
            DenseRows(rows), batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(0)
        )
        for step, x in enumerate(loader):
            if step == n_steps:
                break
            x = x.to(args.device, non_blocking=True)
            loss = model.loss(x, min(0.2, step / 200_000))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            ends.append(time.perf_counter())
            cpu_ends.append(time.process_time())
        data_path = "dense rows, DataLoader"
    else:
        import pytorch_lightning as pl

        from benchmarks.models import mult_vae

        model = mult_vae(rows.shape[1], encoder="sivae" if args.config.startswith("sivae") else "gaussian")
        loader, data_path = _cfrec_loader(rows)

        class StepClock(pl.Callback):
            def on_train_batch_end(self, trainer, *a):
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                ends.append(time.perf_counter())
                cpu_ends.append(time.process_time())

        trainer = pl.Trainer(
            accelerator="gpu" if args.device.startswith("cuda") else "cpu",
            devices=1,
            precision="bf16-mixed" if "bf16" in args.config else "32-true",
            max_steps=n_steps,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[StepClock()],
        )
        trainer.fit(model, train_dataloaders=loader)
    first = max(args.warmup - 1, 0)
    steps, cpu_steps = np.diff(ends[first:]), np.diff(cpu_ends[first:])
    emit(
        {
            "config": args.config,
            "step_s": float(np.median(steps)),
            "steps": len(steps),
            "cpu_step_s": float(np.median(cpu_steps)),
            "data_path": data_path,
            "threads": torch.get_num_threads(),
            "device": args.device,
            "gpu_peak_mb": (torch.cuda.max_memory_allocated() / 2**20) if args.device.startswith("cuda") else None,
        }
    )


def _cfrec_loader(rows):
    """CFDataModule's training loader over `rows` (scipy CSR sliced per batch); numpy-only slicing where
    scipy / cfrec.data cannot be imported (a bare GPU machine)."""
    import torch

    try:
        from cfrec.data.batches import RowBatches, ShuffledBatches

        data, path = RowBatches(rows.scipy()), "cfrec RowBatches (scipy CSR slices)"
    except ImportError:
        import numpy as np

        from cfrec.models.vae import UserBatch

        class NumpyRows(torch.utils.data.Dataset):
            def __len__(self):
                return rows.shape[0]

            def __getitem__(self, index):
                idx = np.asarray(index, dtype=np.int64)
                return UserBatch(rows.torch_rows(idx), torch.from_numpy(idx))

        class Shuffled(torch.utils.data.Sampler):
            def __len__(self):
                return -(-rows.shape[0] // BATCH)

            def __iter__(self):
                order = np.random.default_rng(0).permutation(rows.shape[0])
                return iter([order[i : i + BATCH] for i in range(0, len(order), BATCH)])

        data, path = NumpyRows(), "numpy CSR slices (no scipy)"
        return torch.utils.data.DataLoader(data, sampler=Shuffled(), batch_size=None), path
    sampler = ShuffledBatches(len(data), BATCH, seed=0)
    return torch.utils.data.DataLoader(data, sampler=sampler, batch_size=None), path


def parser(doc: str = __doc__, configs=CONFIGS) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--configs", nargs="+", default=list(configs), choices=CONFIGS + EXTRA_CONFIGS)
    ap.add_argument("--shape", default="ml-20m", choices=sorted(SHAPES))
    ap.add_argument("--users", type=int, help="only the first N users of the shape (same items)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--omp-default", action="store_true", help="do not set OMP_WAIT_POLICY=PASSIVE in the children")
    ap.add_argument("--child", dest="config")
    return ap


def measure(args) -> tuple[dict[str, list[dict]], int]:
    """Run every config in its own process, `args.rounds` rounds in rotating order; per-config results."""
    args.steps = args.steps or (10 if args.quick else 20)
    args.rounds = args.rounds or (1 if args.quick else 2)
    rows = cached_rows(args.shape, args.users)
    n_users = args.users or SHAPES[args.shape][0]
    steps_per_epoch = math.ceil(n_users / BATCH)
    print(
        f"# {args.shape} shape: {rows.shape[0]:,} users × {rows.shape[1]:,} items, {rows.nnz:,} interactions; "
        f"batch {BATCH} → {steps_per_epoch} steps/epoch"
    )
    print(f"# machine: {machine()}; device {args.device}")
    print(
        f"# load average before: {load_average()}; OpenMP wait policy in the children: "
        f"{'default' if args.omp_default else 'PASSIVE'}"
    )
    results: dict[str, list[dict]] = {c: [] for c in args.configs}
    passthrough = [
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--shape",
        args.shape,
        "--device",
        args.device,
        "--threads",
        str(args.threads),
    ] + (["--users", str(args.users)] if args.users else [])
    for r in range(args.rounds):
        order = args.configs[r % len(args.configs) :] + args.configs[: r % len(args.configs)]
        for config in order:
            res = run_child(
                __file__, ["--child", config, *passthrough], env_extra=None if args.omp_default else OMP_PASSIVE
            )
            results[config].append(res)
            print(
                f"#   round {r + 1}: {config:10s} {res['step_s']:.3f} s/step, CPU {res['cpu_step_s']:.3f} s/step, "
                f"peak RSS {res['peak_rss_mb']:.0f} MB (load {load_average()})",
                flush=True,
            )
    return results, steps_per_epoch


def summary_row(config: str, res: list[dict], steps_per_epoch: int, base: list[dict] | None) -> list[str]:
    """config, s/step, epoch s, speed-up (base / this), CPU s/step, CPU speed-up, peak RSS, peak GPU, rounds."""
    step, cpu = median([x["step_s"] for x in res]), median([x["cpu_step_s"] for x in res])
    b, b_cpu = (median([x["step_s"] for x in base]), median([x["cpu_step_s"] for x in base])) if base else (None, None)
    gpu = max((x["gpu_peak_mb"] or 0) for x in res)
    return [
        config,
        f"{step:.3f}",
        f"{step * steps_per_epoch:.1f}",
        f"{b / step:.2f}×" if b else "n/a",
        f"{cpu:.3f}",
        f"{b_cpu / cpu:.2f}×" if b_cpu else "n/a",
        f"{max(x['peak_rss_mb'] for x in res):.0f}",
        f"{gpu:.0f}" if gpu else "–",
        " / ".join(f"{x['step_s']:.3f}" for x in res),
    ]


HEADER = [
    "config",
    "s/step (median)",
    "epoch s (extrapolated)",
    "speed-up",
    "CPU s/step (all threads)",
    "CPU speed-up",
    "peak RSS MB",
    "peak GPU MB",
    "per round s/step",
]


def footer(args, results, t0) -> str:
    first = next(iter(results.values()))[0]
    return (
        f"# {args.steps} timed steps (+{args.warmup} warm-up) per config per round, {args.rounds} round(s); "
        f"torch threads {first['threads']}; data path of ours: {[r[0]['data_path'] for r in results.values()]}; "
        f"load average after: {load_average()}; wall {time.time() - t0:.0f} s"
    )


def main() -> None:
    args = parser().parse_args()
    if args.config:
        return child(args)
    t0 = time.time()
    results, steps_per_epoch = measure(args)
    base = results.get("plain")
    print()
    print(
        table(
            [summary_row(c, r, steps_per_epoch, base) for c, r in results.items()],
            [h.replace("speed-up", "speed-up vs plain") if "speed-up" in h else h for h in HEADER],
        )
    )
    for precision in ("fp32", "bf16"):
        ours, floor = results.get(f"ours-{precision}"), results.get(f"floor-{precision}")
        if ours and floor:
            ratio = median([x["cpu_step_s"] for x in ours]) / median([x["cpu_step_s"] for x in floor])
            wall = median([x["step_s"] for x in ours]) / median([x["step_s"] for x in floor])
            print(
                f"\nours-{precision} ÷ its FLOP floor (the decoder's three products alone): "
                f"{ratio:.2f}× CPU time, {wall:.2f}× wall"
            )
    print()
    print(footer(args, results, t0))


if __name__ == "__main__":
    main()
