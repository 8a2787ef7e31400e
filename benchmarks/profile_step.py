"""Where a Mult-VAE training step's time goes on ML-20M's shape (torch.profiler, CPU ops by self time).

    python benchmarks/profile_step.py [--precision 32|bf16] [--steps 6] [--threads N] [--encoder gaussian|sivae]

The model is cfrec's VAE with its own optimiser (fused Adam), batches of 500 sparse CSR rows; the tables
list aten ops by self CPU time, then grouped by input shape (which (B, I) / (I, H) tensor an op touched).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from benchmarks.common import cached_rows  # noqa: E402
from benchmarks.models import mult_vae  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--precision", default="32", choices=["32", "bf16"])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--rows", default="ml-20m")
    ap.add_argument("--encoder", default="gaussian", choices=["gaussian", "sivae"])
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = cached_rows(args.rows)
    torch.manual_seed(0)
    model = mult_vae(data.shape[1], encoder=args.encoder)
    opt = model.configure_optimizers()
    rng = np.random.default_rng(0)
    batches = [
        data.torch_rows(np.sort(rng.choice(data.shape[0], args.batch, replace=False))) for _ in range(args.steps + 2)
    ]
    amp = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.precision == "bf16" else contextlib.nullcontext

    def step(x):
        with amp():
            loss = model.losses(x, 0.2)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for x in batches[:2]:
        step(x)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for x in batches[2:]:
            with torch.profiler.record_function("## step"):
                step(x)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=40))
    print(
        prof.key_averages(group_by_input_shape=True).table(
            sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=30, max_shapes_column_width=60
        )
    )


if __name__ == "__main__":
    main()
