"""cfrec's Mult-VAE against RecBole 1.2.1's MultiVAE (and the plain baseline) on the same users.

RecBole runs in its own virtual environment (numpy<2, pandas<2.2, scipy<1.14; never the project's):

    python3 -m venv /tmp/recbole-venv
    /tmp/recbole-venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
    /tmp/recbole-venv/bin/pip install recbole==1.2.1 "numpy<2" "pandas<2.2" "scipy<1.14"
    python benchmarks/bench_recbole.py [--recbole-python /tmp/recbole-venv/bin/python] [--users 20000]

Data: the first `--users` users of an ML-20M-shaped generator run (20,108 items, same long tails); one
epoch = ceil(users / 500) user batches for every implementation. RecBole's epoch is timed around
`Trainer._train_epoch` (its dataset building is reported apart); cfrec and plain are timed per step
(bench_train_epoch.py's children) over one epoch's worth of batches. Each in its own process.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import OMP_PASSIVE, cache_dir, cached_rows, load_average, machine, median, run_child, table

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recbole-python", default="/tmp/recbole-venv/bin/python")
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--configs", nargs="+", default=["recbole", "plain", "ours-fp32", "ours-bf16"])
    ap.add_argument("--omp-default", action="store_true")
    args = ap.parse_args()
    t0 = time.time()
    rows = cached_rows("ml-20m", args.users)
    npz = cache_dir() / f"ml-20m-{args.users}-0.npz"
    batches = math.ceil(args.users / 500)
    env = None if args.omp_default else OMP_PASSIVE
    print(
        f"# {rows.shape[0]:,} users × {rows.shape[1]:,} items, {rows.nnz:,} interactions ({npz}); "
        f"{batches} batches of 500"
    )
    print(f"# machine: {machine()}; load average before: {load_average()}")
    results: dict[str, list[dict]] = {c: [] for c in args.configs}
    for r in range(args.rounds):
        for config in args.configs:
            if config == "recbole":
                if not Path(args.recbole_python).exists():
                    print(f"#   RecBole skipped: {args.recbole_python} not found (see this file's docstring)")
                    continue
                res = run_child_with(
                    args.recbole_python,
                    HERE / "recbole_multivae.py",
                    ["--npz", str(npz), "--users", str(args.users)],
                    env,
                )
            else:
                res = run_child(
                    HERE / "bench_train_epoch.py",
                    [
                        "--child",
                        config,
                        "--users",
                        str(args.users),
                        "--steps",
                        str(batches - 3),
                        "--warmup",
                        "3",
                        "--shape",
                        "ml-20m",
                        "--device",
                        "cpu",
                        "--threads",
                        "0",
                    ],
                    env_extra=env,
                )
            results[config].append(res)
            print(
                f"#   round {r + 1}: {config:10s} {res['step_s']:.3f} s/step, CPU {res['cpu_step_s']:.3f} s/step, "
                f"peak RSS {res['peak_rss_mb']:.0f} MB (load {load_average()})",
                flush=True,
            )
    results = {k: v for k, v in results.items() if v}
    base = results.get("recbole") or results.get("plain")
    b, bc = median([x["step_s"] for x in base]), median([x["cpu_step_s"] for x in base])
    rows_out = []
    for config, res in results.items():
        step, cpu = median([x["step_s"] for x in res]), median([x["cpu_step_s"] for x in res])
        extra = f"dataset build {res[0]['prep_s']:.0f} s" if config == "recbole" else ""
        rows_out.append(
            [
                config,
                f"{step:.3f}",
                f"{step * batches:.1f}",
                f"{b / step:.2f}×",
                f"{cpu:.3f}",
                f"{bc / cpu:.2f}×",
                f"{max(x['peak_rss_mb'] for x in res):.0f}",
                extra,
            ]
        )
    name = "RecBole" if "recbole" in results else "plain"
    print()
    print(
        table(
            rows_out,
            [
                "config",
                "s/step (median)",
                f"epoch s ({batches} batches)",
                f"speed-up vs {name}",
                "CPU s/step",
                "CPU speed-up",
                "peak RSS MB",
                "note",
            ],
        )
    )
    print(f"\n# load average after: {load_average()}; wall {time.time() - t0:.0f} s")


def run_child_with(python: str, script: Path, args: list[str], env_extra: dict | None) -> dict:
    import json
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")} | (env_extra or {})
    proc = subprocess.run([python, str(script), *args], capture_output=True, text=True, env=env, timeout=3600)
    for line in proc.stdout.splitlines()[::-1]:
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(f"{script} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


if __name__ == "__main__":
    main()
