"""Does bf16-mixed on CPU keep Mult-VAE's metrics? fp32 vs bf16-mixed on ML-1M-implicit, same seeds.

Each run is `python train.py dataset=ml-1m-implicit model=mult trainer.max_epochs=E seed=S
trainer.precision=P logger=none hydra.run.dir=...` (the project's own pipeline: best validation epoch,
then tested), in its own process; the table gives test NDCG@100 / Recall@20 / Recall@50 per seed, the
mean over seeds, the bf16 − fp32 differences next to the test standard error, fit time and peak memory.

    python benchmarks/bench_bf16_metrics.py                    # 100 epochs, seeds 1 2 (~10+ min here)
    python benchmarks/bench_bf16_metrics.py --epochs 200 --seeds 1 2 3
    python benchmarks/bench_bf16_metrics.py --quick            # 10 epochs, seed 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import OMP_PASSIVE, ROOT, load_average, machine, table

METRICS = ("ndcg@100", "recall@20", "recall@50")
PRECISIONS = {"fp32": "32-true", "bf16": "bf16-mixed"}


def train(precision: str, seed: int, epochs: int, out: Path, dataset: str, extra: list[str], env: dict) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(ROOT / "train.py"), f"dataset={dataset}", "model=mult", f"trainer.max_epochs={epochs}",
           f"seed={seed}", f"trainer.precision={PRECISIONS[precision]}", "logger=none",
           "+trainer.enable_progress_bar=false", f"hydra.run.dir={out}", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=os.environ | env)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # max over children so far (KB)
    metrics_file = out / "metrics.json"
    if proc.returncode != 0 or not metrics_file.exists():
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    m = json.loads(metrics_file.read_text())
    return {"test": m["test"], "val": m["val"], "best_epoch": m.get("best_epoch"), "fit_s": m.get("train_seconds"),
            "wall_s": wall, "peak_mb": peak / 1024 if peak > before else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--seeds", type=int, nargs="+")
    ap.add_argument("--dataset", default="ml-1m-implicit")
    ap.add_argument("--out", default="/tmp/cfrec-bench/bf16_metrics")
    ap.add_argument("--omp-default", action="store_true")
    ap.add_argument("extra", nargs="*", help="more train.py overrides")
    args = ap.parse_args()
    epochs = args.epochs or (10 if args.quick else 100)
    seeds = args.seeds or ([1] if args.quick else [1, 2])
    env = {} if args.omp_default else OMP_PASSIVE
    print(f"# {args.dataset}, Mult-VAE, {epochs} epochs, seeds {seeds}; machine: {machine()}")
    print(f"# load average before: {load_average()}")
    runs: dict[tuple[str, int], dict] = {}
    for seed in seeds:
        for precision in (("fp32", "bf16") if seed % 2 else ("bf16", "fp32")):  # alternate who runs first
            out = Path(args.out) / f"{args.dataset}-e{epochs}-s{seed}-{precision}-{int(time.time())}"
            runs[precision, seed] = r = train(precision, seed, epochs, out, args.dataset, args.extra, env)
            print(f"#   seed {seed} {precision}: test NDCG@100 {r['test']['ndcg@100']:.4f}  fit {r['fit_s']:.0f} s "
                  f"(load {load_average()})", flush=True)
    rows = []
    for seed in seeds:
        for precision in PRECISIONS:
            r = runs[precision, seed]
            rows.append([str(seed), precision, *(f"{r['test'][m]:.4f} ± {r['test'][m + '_se']:.4f}" for m in METRICS),
                         str(r["best_epoch"]), f"{r['fit_s']:.0f}"])
        d = [runs["bf16", seed]["test"][m] - runs["fp32", seed]["test"][m] for m in METRICS]
        t = runs["fp32", seed]["fit_s"] / runs["bf16", seed]["fit_s"]
        rows.append([str(seed), "bf16 − fp32", *(f"{x:+.4f}" for x in d), "", f"fp32/bf16 {t:.2f}×"])
    for precision in PRECISIONS:
        means = [statistics.mean(runs[precision, s]["test"][m] for s in seeds) for m in METRICS]
        rows.append(["mean", precision, *(f"{x:.4f}" for x in means), "",
                     f"{statistics.mean(runs[precision, s]['fit_s'] for s in seeds):.0f}"])
    diffs = [statistics.mean(runs["bf16", s]["test"][m] - runs["fp32", s]["test"][m] for s in seeds) for m in METRICS]
    rows.append(["mean", "bf16 − fp32", *(f"{x:+.4f}" for x in diffs), "", ""])
    print()
    print(table(rows, ["seed", "precision", "test NDCG@100 ± SE", "test Recall@20 ± SE", "test Recall@50 ± SE",
                       "best epoch", "fit s"]))
    peak = max((r["peak_mb"] or 0) for r in runs.values())
    print(f"\n# peak RSS of the largest run: {peak:.0f} MB; load average after: {load_average()}")


if __name__ == "__main__":
    main()
