"""What `python train.py` prints: one line per epoch, a short console, and where a run or sweep put its results.

- `EpochProgress` (a Lightning callback, conf/callbacks/default.yaml) logs one line per training epoch,
  whether or not stdout is a terminal (nohup, SLURM): epoch, mean training loss, validation Recall@20 and
  NDCG@100 (`*` at the best so far), β where the model anneals one, and the time since fitting started.
  When stdout is not a terminal it switches Lightning's progress bar off, whose redraws would fill the file.
- `QuietConsole` (a logging filter on the console handler of conf/hydra/job_logging/cfrec.yaml) keeps
  known-harmless library messages off the console; the run's `train.log` still has them.
- `ConsoleFormatter` writes `HH:MM:SS message` (with the level for warnings and errors).
- `RunSummary` (a Hydra callback, conf/hydra/default.yaml) ends a run or a sweep with where its results
  are, the report command and the `wandb sync` command.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig

log = logging.getLogger("cfrec.run.progress")


class EpochProgress(pl.Callback):
    """One log line per training epoch, e.g.
    `epoch  3/50  loss 412.3107  val Recall@20 0.2950  NDCG@100 0.3012 *  β 0.0120  7.4 s`."""

    def __init__(self) -> None:
        self._start = 0.0
        self._loss_sum: torch.Tensor | None = None
        self._batches = 0

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        bar = trainer.progress_bar_callback
        if bar is not None and not sys.stdout.isatty():
            bar.disable()

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._loss_sum, self._batches = None, 0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):  # summed on the device: one sync per epoch, not per step
            loss = loss.detach().float()
            self._loss_sum = loss if self._loss_sum is None else self._loss_sum + loss
            self._batches += 1

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        log.info("%s", self.line(trainer, pl_module))

    def line(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> str:
        """The epoch's line (metrics the epoch did not produce are left out)."""
        metrics = trainer.callback_metrics
        width = len(str(trainer.max_epochs)) if trainer.max_epochs and trainer.max_epochs > 0 else 1
        total = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        parts = [f"epoch {trainer.current_epoch + 1:>{width}}{total}"]
        if self._loss_sum is not None and self._batches:
            parts.append(f"loss {float(self._loss_sum) / self._batches:.4f}")
        elif "train/loss_epoch" in metrics or "train/loss" in metrics:
            parts.append(f"loss {float(metrics.get('train/loss_epoch', metrics.get('train/loss'))):.4f}")
        history = getattr(pl_module, "history", None)
        validated = bool(history) and history[-1].get("epoch") == trainer.current_epoch
        if validated:  # `*`: better than every earlier epoch (a resumed run's included), as ModelCheckpoint keeps
            ndcg = float(history[-1]["ndcg@100"])
            best = ndcg > max((float(h["ndcg@100"]) for h in history[:-1]), default=float("-inf"))
            recall = float(history[-1]["recall@20"])
            parts.append(f"val Recall@20 {recall:.4f}  NDCG@100 {ndcg:.4f}{' *' if best else ''}")
        beta = getattr(pl_module, "beta", None)
        if callable(beta) and not getattr(beta, "skip_kl", True):
            parts.append(f"β {float(beta(max(trainer.global_step - 1, 0))):.4f}")
        parts.append(f"{time.perf_counter() - self._start:.1f} s")
        return "  ".join(parts)


# Library messages known to be harmless here, kept off the console (the run's train.log still has them).
KNOWN_HARMLESS = (
    r"isinstance\(treespec, LeafSpec\)` is deprecated",  # Lightning on torch >= 2.10
    r"is smaller than the logging interval",  # tiny datasets: fewer batches than log_every_n_steps
    r"Sparse CSR tensor support is in beta",  # torch: our batches are sparse CSR on purpose
    r"does not have many workers",  # our loaders slice CSR in the main process on purpose
    r"Trying to infer the `batch_size`",
)


class QuietConsole(logging.Filter):
    """Drops records from the libraries' own loggers below WARNING and the KNOWN_HARMLESS warnings."""

    LIBRARIES = ("pytorch_lightning", "lightning", "lightning_fabric", "wandb")

    def __init__(self) -> None:
        super().__init__()
        self._harmless = re.compile("|".join(KNOWN_HARMLESS))

    def filter(self, record: logging.LogRecord) -> bool:
        library = record.name.split(".")[0] in self.LIBRARIES
        if library and record.levelno < logging.WARNING:
            return False
        return not self._harmless.search(record.getMessage())


class ConsoleFormatter(logging.Formatter):
    """`HH:MM:SS message`; warnings and errors carry their level; a captured Python warning is one line."""

    def __init__(self) -> None:
        super().__init__(datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage().strip()
        if record.name == "py.warnings":  # "path:line: Category: message\n  source line"
            message = message.splitlines()[0]
        level = f"{record.levelname}: " if record.levelno >= logging.WARNING else ""
        return f"{self.formatTime(record, self.datefmt)} {level}{message}"


class RunSummary(HydraCallback):
    """After a run: where it wrote its results. After a sweep: how many runs ended how, where they are,
    the report command and, when W&B runs were written offline, the `wandb sync` command."""

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        job_return = kwargs.get("job_return")
        hydra_cfg = getattr(job_return, "hydra_cfg", None)
        if hydra_cfg is None:
            return
        out = Path(hydra_cfg.hydra.runtime.output_dir)
        log.info("results in %s (%s)", out, ", ".join(run_outputs(out)))
        if list(out.glob("wandb/offline-run-*")):
            log.info("upload to W&B: wandb sync %s", out / "wandb" / "offline-run-*")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        for line in sweep_summary(Path(str(config.hydra.sweep.dir))):
            log.info("%s", line)


#: what a run folder may hold, in the order the closing line names them
RUN_OUTPUTS = ("metrics.json", "recommendations.csv", "train.log", "checkpoints/")
#: folders of a run that hold no runs (searched for metrics.json no further)
_NOT_RUNS = {"wandb", "checkpoints", "csv", "report"}


def run_outputs(out: Path) -> list[str]:
    """The RUN_OUTPUTS that the run folder `out` holds (a closed-form run writes no checkpoints/)."""
    return [name for name in RUN_OUTPUTS if (out / name.rstrip("/")).exists()]


def _run_dirs(sweep: Path) -> list[Path]:
    """The folders under `sweep` holding a metrics.json, at any depth (a `hydra.sweep.subdir` may nest them)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(sweep):
        if "metrics.json" in filenames:
            found.append(Path(dirpath))
        dirnames[:] = sorted(d for d in dirnames if d not in _NOT_RUNS and not d.startswith("."))
    return found


def sweep_summary(sweep: Path) -> list[str]:
    """The closing lines of a sweep over the runs found under `sweep`: their count by status, the report command
    and, for offline W&B runs, a `wandb sync` command whose patterns reach every one of them."""
    statuses: dict[str, int] = {}
    runs = _run_dirs(sweep)
    for run in runs:
        try:
            status = json.loads((run / "metrics.json").read_text()).get("status", "unknown")
        except (OSError, ValueError):
            status = "unreadable"
        statuses[status] = statuses.get(status, 0) + 1
    counts = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    lines = [f"sweep done: {len(runs)} run{'s' if len(runs) != 1 else ''} ({counts or 'none finished'}) in {sweep}/",
             f"report: python -m cfrec.report {sweep}"]
    depths = sorted({len(run.relative_to(sweep).parts) for run in runs if list(run.glob("wandb/offline-run-*"))})
    if depths:
        patterns = [f"{sweep}/{'*/' * depth}wandb/offline-run-*" for depth in depths]
        lines.append(f"upload to W&B: wandb sync {' '.join(patterns)}")
    return lines
