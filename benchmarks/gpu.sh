#!/usr/bin/env bash
# All GPU measurements of the speed issue, on one card, in under 5 minutes:
# ML-20M-shaped Mult-VAE training (116,677 users × 20,108 items, ~9.9M interactions, batch 500 → 234 steps),
# one full epoch of batches per config (3 warm-up + 231 timed steps), 2 rounds, each config in its own process:
#   plain      dense rows from a DataLoader, dense first layer, log_softmax, fp32 (the straightforward baseline)
#   ours-fp32  cfrec's VAE in a Lightning Trainer, sparse CSR batches, precision 32-true
#   ours-bf16  the same, precision bf16-mixed
#   floor-bf16 the decoder's three products alone (the FLOP floor of a step)
# then 1 and 4 processes of ours-bf16 at once on the card (what a sweep sharing it gets in aggregate).
# Needs only python + torch (CUDA) + pytorch_lightning + numpy: hydra, omegaconf, scipy, pandas and wandb may be
# absent (benchmarks/models.py stands in for them). Usage, from anywhere:
#   bash benchmarks/gpu.sh            # writes gpu_bench.txt to $OUT (or the current directory)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$(command -v python3 || command -v python)}
OUTDIR=${OUT:-.}
export CFREC_BENCH_CACHE=${CFREC_BENCH_CACHE:-/tmp/cfrec-bench-cache}
{
  echo "# $(date -u +%FT%TZ) on $(hostname)"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || echo "nvidia-smi failed"
  "$PY" -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, 'CUDA', torch.version.cuda, '| lightning', pl.__version__, '|', torch.cuda.get_device_name(0), '| bf16', torch.cuda.is_bf16_supported())"
  nproc | sed 's/^/# CPU cores: /'
  timeout 270 "$PY" benchmarks/bench_train_epoch.py --device cuda --steps 231 --warmup 3 --rounds 2 \
    --configs plain ours-fp32 ours-bf16 floor-bf16
  # sweep jobs sharing the card: K processes of ours-bf16 at once (one full epoch of steps each); aggregate
  # throughput = Σ 1 / (s/step) against one process alone (the first line)
  for K in 1 4; do
    pids=()
    for i in $(seq "$K"); do
      timeout 240 "$PY" benchmarks/bench_train_epoch.py --child ours-bf16 --device cuda --steps 231 --warmup 3 \
        > "/tmp/cfrec-gpu-share-$K-$i.txt" 2>&1 & pids+=($!)
    done
    wait "${pids[@]}" || true
    "$PY" - "$K" <<'PYEOF'
import json, sys
k = int(sys.argv[1])
steps = []
for i in range(1, k + 1):
    lines = [l for l in open(f"/tmp/cfrec-gpu-share-{k}-{i}.txt") if l.startswith("RESULT ")]
    steps.append(json.loads(lines[-1][7:])["step_s"] if lines else float("nan"))
print(f"# {k} process(es) sharing the card: s/step each {[round(s, 4) for s in steps]}, aggregate "
      f"{sum(1 / s for s in steps):.1f} steps/s ({sum(1 / s for s in steps) / 234:.2f} ML-20M epochs/s)")
PYEOF
  done
} 2>&1 | tee "$OUTDIR/gpu_bench.txt"
