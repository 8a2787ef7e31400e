"""SIVAE's training step against Mult-VAE's on ML-20M's shape (target: SIVAE ≤ 2× Mult-VAE per epoch).

Both are cfrec.models.vae.VAE in a Lightning Trainer on the same CSR batches (see bench_train_epoch.py);
SIVAE swaps in `cfrec.models.sivae.SemiImplicitEncoder` with its defaults (noise layers 100-100, 600 wide,
K = 1 extra ψ draw, Bernoulli noise). Ratio = SIVAE step / Mult-VAE step at the same precision.

    python benchmarks/bench_sivae.py           # 40 steps, 2 rounds, fp32 and bf16 (~5 min here)
    python benchmarks/bench_sivae.py --quick   # 12 steps, 1 round
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_train_epoch import footer, measure, parser
from benchmarks.common import median, table


def main() -> None:
    args = parser(__doc__, configs=("ours-fp32", "sivae-fp32", "ours-bf16", "sivae-bf16")).parse_args()
    t0 = time.time()
    results, steps_per_epoch = measure(args)
    rows = []
    for config, res in results.items():
        precision = config.rsplit("-", 1)[1]
        base = results.get(f"ours-{precision}")
        step, cpu = median([x["step_s"] for x in res]), median([x["cpu_step_s"] for x in res])
        b, bc = median([x["step_s"] for x in base]), median([x["cpu_step_s"] for x in base])
        rows.append([config.replace("ours", "mult-vae"), f"{step:.3f}", f"{step * steps_per_epoch:.1f}",
                     f"{step / b:.2f}×", f"{cpu:.3f}", f"{cpu / bc:.2f}×", f"{max(x['peak_rss_mb'] for x in res):.0f}",
                     " / ".join(f"{x['step_s']:.3f}" for x in res)])
    print()
    print(table(rows, ["config", "s/step (median)", "epoch s (extrapolated)", "time ÷ Mult-VAE's (target ≤ 2)",
                       "CPU s/step", "CPU time ÷ Mult-VAE's", "peak RSS MB", "per round s/step"]))
    print(footer(args, results, t0))


if __name__ == "__main__":
    main()
