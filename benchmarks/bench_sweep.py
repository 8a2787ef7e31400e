"""A table sweep's wall time on this CPU, start-up included, by how its runs are launched.

    python benchmarks/bench_sweep.py [--dataset ml-100k] [--epochs 10] [--seeds 1 2 3 4] [--launchers ...]

The same sweep (Mult-VAE, one run per seed, per-epoch validation, logger=csv) launched:
  processes    one `python train.py ...` per run, one after the other (a shell loop): start-up paid per run
  basic        `python train.py -m seed=...` (Hydra's basic launcher): one process, runs one after the other
  joblib-2     `-m hydra/launcher=joblib hydra.launcher.n_jobs=2`, each worker with 1 torch thread
               (OMP_NUM_THREADS=1): two runs at a time on the 2 cores
Wall time of the whole command, CPU time of the processes, and the start-up of one bare process
(`python train.py --help`: imports, Hydra's composition) for reference.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import OMP_PASSIVE, load_average, table

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", nargs="+", default=["1", "2", "3", "4"])
    ap.add_argument("--launchers", nargs="+", default=["startup", "processes", "basic", "joblib-2"])
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cfrec-sweep-"))
    env = {**os.environ, **OMP_PASSIVE, "PYTHONPATH": str(ROOT)}
    common = [f"dataset={args.dataset}", f"trainer.max_epochs={args.epochs}", "logger=csv",
              "+trainer.enable_progress_bar=false"]
    print(f"{args.dataset}, {len(args.seeds)} runs of {args.epochs} epochs; load {load_average()}", flush=True)
    # the split is prepared (and cached) once, untimed
    subprocess.run([sys.executable, "-m", "cfrec.data", f"dataset={args.dataset}"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    rows = []
    for launcher in args.launchers:
        if launcher == "startup":
            wall, cpu = timed([sys.executable, "train.py", "--help"], env)
            rows.append(["start-up only (`train.py --help`)", f"{wall:.1f}", f"{cpu:.1f}", "", load_average()])
            print(rows[-1], flush=True)
            continue
        out = work / launcher
        if launcher == "processes":
            wall = cpu = 0.0
            for seed in args.seeds:
                w, c = timed([sys.executable, "train.py", *common, f"seed={seed}", f"hydra.run.dir={out}/{seed}"], env)
                wall, cpu = wall + w, cpu + c
        elif launcher == "basic":
            wall, cpu = timed([sys.executable, "train.py", "-m", *common, f"seed={','.join(args.seeds)}",
                               f"hydra.sweep.dir={out}"], env)
        elif launcher == "joblib-2":
            wall, cpu = timed([sys.executable, "train.py", "-m", *common, f"seed={','.join(args.seeds)}",
                               "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={out}"],
                              {**env, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
        else:
            raise ValueError(launcher)
        rows.append([launcher, f"{wall:.1f}", f"{cpu:.1f}", f"{wall / len(args.seeds):.1f}", load_average()])
        print(rows[-1], flush=True)
    print()
    print(table(rows, ["launcher", "wall s (whole sweep)", "CPU s", "wall s per run", "load after"]))


if __name__ == "__main__":
    main()
