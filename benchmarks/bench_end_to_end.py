"""End to end through `train.py` against the plain loop, in one command: wall time of whole processes.

    python benchmarks/bench_end_to_end.py --dataset ml-1m-implicit --epochs 20 [--rounds 2] [--before DIR]
    python benchmarks/bench_end_to_end.py --dataset gowalla --epochs 2

Configurations, each a fresh process (start-up, data loading, training with validation every epoch, the
best epoch tested at the end), interleaved round after round:
  ours     `python train.py dataset=<d> trainer.max_epochs=<n> logger=csv` (this checkout; default precision)
  before   the same command in another checkout (`--before DIR`, e.g. `git worktree add DIR <commit>`):
           what cfrec took before a change
  plain    `benchmarks/plain_loop.py`: the same split, model, batches, per-epoch validation and test,
           written the obvious way (dense rows, dense first layer, log_softmax, numpy metrics, fp32)
Reported: wall seconds of the process (median over rounds), its CPU seconds (user + system, both threads),
ratios against plain, test NDCG@100, and the load average before and after. Every process gets
OMP_WAIT_POLICY=PASSIVE (train.py sets it too).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import OMP_PASSIVE, load_average, median, table

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], cwd: Path, env: dict) -> tuple[float, float, subprocess.CompletedProcess]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return wall, cpu, proc


def run_cfrec(checkout: Path, args, work: Path, tag: str) -> dict:
    out = work / f"{tag}-{time.time_ns()}"
    env = {
        **os.environ,
        **OMP_PASSIVE,
        "PYTHONPATH": str(checkout),
        "CFREC_CACHE_DIR": str(args.cache_dir),
        "CFREC_DATA_DIR": os.environ.get("CFREC_DATA_DIR", str(ROOT.parent / "shared" / "data")),
    }
    cmd = [
        sys.executable,
        "train.py",
        f"dataset={args.dataset}",
        f"trainer.max_epochs={args.epochs}",
        "logger=csv",
        f"hydra.run.dir={out}",
        "+trainer.enable_progress_bar=false",
        *args.overrides,
    ]
    wall, cpu, _ = timed(cmd, checkout, env)
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "wall": wall,
        "cpu": cpu,
        "test_ndcg": metrics["test"]["ndcg@100"],
        "fit": metrics["train_seconds"],
        "epochs": metrics.get("epochs"),
    }


def split_file(args) -> Path:
    """The cached split.npz of the dataset (a first cfrec run creates it)."""
    found = sorted(Path(args.cache_dir).glob(f"{args.dataset}-*/split.npz"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(f"no cached split for {args.dataset} under {args.cache_dir}")
    return found[-1]


def run_plain(args) -> dict:
    env = {**os.environ, **OMP_PASSIVE, "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "plain_loop.py"),
        "--split",
        str(split_file(args)),
        "--epochs",
        str(args.epochs),
    ]
    wall, cpu, proc = timed(cmd, ROOT, env)
    result = json.loads(next(line for line in proc.stdout.splitlines()[::-1] if line.startswith("RESULT "))[7:])
    return {"wall": wall, "cpu": cpu, "test_ndcg": result["test_ndcg"], "fit": result["fit_s"], "epochs": args.epochs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="ml-1m-implicit")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--before", type=Path, help="another cfrec checkout to time the same command in")
    ap.add_argument("--configs", nargs="+", default=["ours", "before", "plain"])
    ap.add_argument("--cache-dir", type=Path, default=Path(os.environ.get("CFREC_CACHE_DIR", ROOT / "data_cache")))
    ap.add_argument("overrides", nargs="*", help="extra train.py overrides for ours and before")
    args = ap.parse_args()
    configs = [c for c in args.configs if c != "before" or args.before]
    work = Path(tempfile.mkdtemp(prefix="cfrec-e2e-"))
    print(f"{args.dataset}, {args.epochs} epochs, {args.rounds} round(s); load {load_average()}", flush=True)
    if not list(Path(args.cache_dir).glob(f"{args.dataset}-*/split.npz")):  # prepare the split once, untimed
        run_cfrec(ROOT, argparse.Namespace(**{**vars(args), "epochs": 1}), work, "prepare")
    results: dict[str, list[dict]] = {c: [] for c in configs}
    for r in range(args.rounds):
        order = configs[r % len(configs) :] + configs[: r % len(configs)]
        for config in order:
            res = (
                run_plain(args)
                if config == "plain"
                else run_cfrec(ROOT if config == "ours" else args.before, args, work, config)
            )
            results[config].append(res)
            print(
                f"round {r + 1} {config}: {res['wall']:.1f} s wall, {res['cpu']:.1f} s CPU, fit {res['fit']:.1f} s, "
                f"test NDCG@100 {res['test_ndcg']:.4f}; load {load_average()}",
                flush=True,
            )
    plain = results.get("plain")
    rows = []
    for config in configs:
        wall = median([x["wall"] for x in results[config]])
        cpu = median([x["cpu"] for x in results[config]])
        fit = median([x["fit"] for x in results[config]])
        ratio = (
            (f"{median([x['wall'] for x in plain]) / wall:.2f}×", f"{median([x['cpu'] for x in plain]) / cpu:.2f}×")
            if plain
            else ("", "")
        )
        rows.append(
            [
                config,
                f"{wall:.1f}",
                f"{cpu:.1f}",
                f"{fit:.1f}",
                ratio[0],
                ratio[1],
                f"{results[config][-1]['test_ndcg']:.4f}",
                " / ".join(f"{x['wall']:.1f}" for x in results[config]),
            ]
        )
    print()
    print(
        table(
            rows,
            [
                "config",
                "wall s (median)",
                "CPU s",
                "fit s (in-process)",
                "wall speed-up vs plain",
                "CPU speed-up vs plain",
                "test NDCG@100",
                "per round wall s",
            ],
        )
    )
    print(f"\nload average at the end: {load_average()}")


if __name__ == "__main__":
    main()
