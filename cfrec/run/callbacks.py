"""Lightning callbacks of every neural run: per-epoch reseeding, the non-finite-loss guard, glibc's reuse of
freed memory and β-aware early stopping (cfrec's checkpoint entry, `RunState`, lives with resume in
`cfrec.run.checkpoints`)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks.early_stopping import EarlyStoppingReason


class NonFiniteLossError(FloatingPointError):
    """The training loss (or, after an epoch, a parameter) became NaN or infinite."""


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A 32-bit seed derived from (run seed, epoch, process rank) only (rank: distinct draws per DDP process)."""
    return int(np.random.SeedSequence([int(seed) % 2**32, int(epoch), int(rank)]).generate_state(1)[0])


def seed_all(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (torch.manual_seed covers CUDA too)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class EpochSeed(pl.Callback):
    """Reseed every generator from (seed, epoch) when an epoch starts.

    Dropout and z-sampling then draw the same numbers in epoch e whether the run went through
    without a stop or was resumed from the checkpoint of epoch e-1 (Lightning does not store RNG
    states in checkpoints). The batch order is already a function of (seed, epoch): see
    `cfrec.data.batches.ShuffledBatches`, whose `set_epoch` Lightning calls.
    """

    def __init__(self, seed: int):
        self.seed = int(seed)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        seed_all(epoch_seed(self.seed, trainer.current_epoch, trainer.global_rank))


class FiniteGuard(pl.Callback):
    """Stop at the first non-finite training loss, before its backward pass and update.

    The loss is checked every step (one scalar device sync); parameters are checked once more before
    validation and at the end of each training epoch, i.e. before any checkpoint of that epoch is
    written (Lightning runs ModelCheckpoint after every other callback), in case a finite loss gave
    non-finite gradients on an epoch's last step. So `last.ckpt` and `best-*.ckpt` only ever hold
    finite models.
    """

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor) -> None:
        if not bool(torch.isfinite(loss.detach()).all()):
            value = loss.detach().float().reshape(-1)[0].item() if loss.numel() else float("nan")
            raise NonFiniteLossError(
                f"non-finite training loss ({value}) at epoch {trainer.current_epoch + 1} "
                f"(step {trainer.global_step}); {_last_good(trainer)}"
            )

    def _check_parameters(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        bad = [name for name, p in pl_module.named_parameters() if not bool(torch.isfinite(p.detach()).all())]
        if bad:
            raise NonFiniteLossError(
                f"non-finite parameters ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}) after the "
                f"updates of epoch {trainer.current_epoch + 1} (step {trainer.global_step}); {_last_good(trainer)}"
            )

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self._check_parameters(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check_parameters(trainer, pl_module)


def _last_good(trainer: pl.Trainer) -> str:
    """Where the last checkpoint written before the failure is (never a state from this epoch; epochs from 1)."""
    ckpt = trainer.checkpoint_callback
    path = getattr(ckpt, "last_model_path", "") or getattr(ckpt, "best_model_path", "")
    if not path or not Path(path).exists():
        return "no checkpoint had been written yet"
    try:
        epoch = torch.load(path, map_location="cpu", weights_only=False, mmap=True)["epoch"]
        return f"the last good checkpoint is {path} (end of epoch {epoch + 1})"
    except Exception:  # only a message
        return f"the last good checkpoint is {path}"


def reuse_freed_memory(threshold: int = 1 << 30) -> bool:
    """Make glibc's malloc keep freed blocks of up to `threshold` bytes for reuse (Linux/glibc only).

    By default glibc serves every block above 32 MB (a Gowalla batch's logits, the I × 600 weight gradients)
    with a fresh mmap and returns it to the OS on free, so each training step faults in and zeroes those
    pages again: measured here 80-90 ms of CPU per 98 MB tensor, a sixth of a Gowalla step. Raising the mmap
    and trim thresholds lets the heap keep and reuse them (3-7× cheaper allocations). Values are not touched.
    Returns whether glibc accepted the settings (False elsewhere: a no-op)."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, ctypes.c_int(threshold))) and bool(
            libc.mallopt(m_trim_threshold, ctypes.c_int(min(2 * threshold, 2**31 - 1))))
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return False


class ReuseFreedMemory(pl.Callback):
    """Calls `reuse_freed_memory` when a fit, validation or test starts (once per process)."""

    _done = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if not ReuseFreedMemory._done:
            ReuseFreedMemory._done = True
            reuse_freed_memory()


class EarlyStopping(pl.callbacks.EarlyStopping):
    """Lightning's early stopping on `monitor`, off when `patience` is None (then `trainer.max_epochs` alone
    ends the run), so that `callbacks.early_stopping.patience=P` switches it on from the command line.

    Two holds keep a run from stopping too soon (docs/claims.md, "Budget"):
    - `wait_for_beta` (default): while an annealed β is still below its cap, the best score is tracked but
      patience is not counted: it counts from the first epoch trained entirely at the cap (metrics.json's
      0-based `beta_cap_epoch`), so a run runs at least beta_cap_epoch + patience epochs, and the β a β search
      chose is the β the run is tested at.
      False is the plain rule.
    - `min_epochs`: a minimum budget; no stop before that many epochs (patience counts as usual), for slow
      starters such as a zero-bias Logistic decoder that plateaus early and climbs later.
    """

    def __init__(self, patience: int | None = None, wait_for_beta: bool = True, min_epochs: int | None = None,
                 **kwargs: Any):
        super().__init__(patience=patience if patience is not None else 0, **kwargs)
        self.enabled = patience is not None
        self.wait_for_beta, self.min_epochs = bool(wait_for_beta), min_epochs
        self._beta_pending = self._before_minimum = False

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """A run resumed from the checkpoint of its own early stop is finished: it trains no further step
        (Lightning would otherwise train on past the stop and rewrite the run's results)."""
        if self.enabled and self.stopped_epoch > 0 and self.wait_count >= self.patience:
            trainer.should_stop = True

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.enabled:
            super().on_validation_end(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.enabled:
            super().on_train_epoch_end(trainer, pl_module)

    def _run_early_stopping_check(self, trainer: pl.Trainer) -> None:
        schedule = getattr(trainer.lightning_module, "beta", None)
        at_cap = getattr(schedule, "reached_cap", None)
        # held while the epoch's first update (step global_step - its steps) was still below the cap
        first = trainer.global_step - max(int(trainer.num_training_batches), 1)
        self._beta_pending = self.wait_for_beta and at_cap is not None and not at_cap(first)
        self._before_minimum = self.min_epochs is not None and trainer.current_epoch + 1 < self.min_epochs
        super()._run_early_stopping_check(trainer)

    def _evaluate_stopping_criteria(self, current: torch.Tensor) -> tuple[bool, str | None]:
        should_stop, reason = super()._evaluate_stopping_criteria(current)
        if self._beta_pending:
            self.wait_count = 0  # patience counts from the first epoch at the cap
        held = self._beta_pending or self._before_minimum
        if should_stop and held and self.stopping_reason == EarlyStoppingReason.PATIENCE_EXHAUSTED:
            self.stopping_reason = EarlyStoppingReason.NOT_STOPPED
            return False, None
        return should_stop, reason
