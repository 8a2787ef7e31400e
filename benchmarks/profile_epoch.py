"""Where an end-to-end epoch's time goes: `cfrec.run.training.run` (what train.py runs) with a clock callback.

    python benchmarks/profile_epoch.py dataset=ml-1m-implicit trainer.max_epochs=5 [--torch-profile] [overrides]

Splits each epoch into: training steps (forward, backward, optimiser, per-step hooks and logging), the
loop between steps (fetching the next batch), validation, and the epoch's tail (checkpoints, epoch-end
logging); wall and process CPU seconds. `--torch-profile` adds torch.profiler's top ops by self CPU time.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
T0 = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pytorch_lightning as pl  # noqa: E402

IMPORTED = time.perf_counter()


class Clock(pl.Callback):
    def __init__(self):
        self.wall, self.cpu = defaultdict(float), defaultdict(float)
        self.mark = None

    def _lap(self, phase):
        now = (time.perf_counter(), time.process_time())
        if self.mark is not None and phase is not None:
            self.wall[phase] += now[0] - self.mark[0]
            self.cpu[phase] += now[1] - self.mark[1]
        self.mark = now

    def on_train_epoch_start(self, trainer, pl_module):
        self._lap("epoch start (incl. previous epoch's checkpoint)" if trainer.current_epoch else None)

    def on_train_batch_start(self, *a):
        self._lap("between steps (batch fetch, loop)")

    def on_train_batch_end(self, *a):
        self._lap("training steps")

    def on_validation_start(self, trainer, pl_module):
        self._lap("between steps (batch fetch, loop)")

    def on_validation_end(self, trainer, pl_module):
        self._lap("validation")

    def on_train_end(self, trainer, pl_module):
        self._lap("epoch start (incl. previous epoch's checkpoint)")


def main() -> None:
    from hydra import compose, initialize_config_dir

    import cfrec.config
    from cfrec.run.training import run

    torch_profile = "--torch-profile" in sys.argv
    overrides = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = Path(tempfile.mkdtemp(prefix="cfrec-profile-"))
    with initialize_config_dir(config_dir=str(cfrec.config.CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.output_dir={out}", "logger=csv", *overrides])
    clock = Clock()
    start = (time.perf_counter(), time.process_time())
    if torch_profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            result = run(cfg, out, {"model": "mult"}, [clock])
    else:
        result = run(cfg, out, {"model": "mult"}, [clock])
    total = (time.perf_counter() - start[0], time.process_time() - start[1])
    epochs = result["epochs"]
    print(
        f"imports {IMPORTED - T0:.2f} s; run {total[0]:.2f} s wall, {total[1]:.2f} s CPU; {epochs} epochs; "
        f"load {os.getloadavg()}"
    )
    print(f"{'phase':50s} {'wall s/epoch':>12s} {'CPU s/epoch':>12s} {'share of run CPU':>16s}")
    for phase in clock.wall:
        print(
            f"{phase:50s} {clock.wall[phase] / epochs:12.3f} {clock.cpu[phase] / epochs:12.3f} "
            f"{clock.cpu[phase] / total[1]:16.1%}"
        )
    rest = total[1] - sum(clock.cpu.values())
    print(
        f"{'outside epochs (data, setup, final validate+test)':50s} {'':12s} {rest / epochs:12.3f} "
        f"{rest / total[1]:16.1%}"
    )
    if torch_profile:
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


if __name__ == "__main__":
    main()
