"""Resuming a run, neural or closed-form: whether it is already done, where it resumes from, the fingerprint that
must match, cfrec's entry in every checkpoint (`RunState`), and the checkpoints' atomic writes.

`finished_run` answers "is this run done with this configuration?" for both kinds (a closed-form fit keeps no
checkpoint; a neural run whose last.ckpt went after its test keeps its tested one); `resume_point` answers "which
`last.ckpt` does this neural attempt continue from?".
"""

from __future__ import annotations

import glob
import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint

from cfrec.config import setting_changes
from cfrec.errors import ConfigError, DataError
from cfrec.io import atomic_write_bytes
from cfrec.run.per_user import FILENAME as PER_USER_FILE
from cfrec.run.record import RunRecord
from cfrec.run.result import RunResult

log = logging.getLogger(__name__)

#: key of cfrec's own entry in a Lightning checkpoint (the run's fingerprint, checked on resume, and its history)
CHECKPOINT_KEY = "cfrec"

#: dataset keys that may change between the first attempt of a run and its resumption; `budget` is only read
#: through the trainer, β and early-stopping keys, so its effect on training is fingerprinted where it lands
#: (the β schedule under `model`), and a preset gaining a budget block does not orphan older checkpoints
_RESUME_FREE_DATASET_KEYS = ("cache_dir", "raw_path", "eval_batch_size", "budget")


class CheckpointError(RuntimeError):
    """The checkpoint a run would resume from is unreadable or belongs to another configuration."""


def run_fingerprint(cfg: DictConfig, counts: dict[str, Any]) -> dict[str, Any]:
    """What must not change between the attempts of one run: seed, model, dataset options and split sizes."""
    c = OmegaConf.to_container(cfg, resolve=True)
    dataset = {k: v for k, v in (c.get("dataset") or {}).items() if k not in _RESUME_FREE_DATASET_KEYS}
    fingerprint = {"seed": c.get("seed"), "model": c.get("model"), "dataset": dataset, "data": counts}
    return json.loads(json.dumps(fingerprint, sort_keys=True, default=str))


def fingerprint_changes(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """`key: old -> new` for each setting that differs (`cfrec.config.setting_changes`: an option added to cfrec
    after the checkpoint was written, null by default, does not block its resumption); nor do the resume-free
    dataset keys that a checkpoint written before they were freed still holds."""
    free = tuple(f"dataset.{k}" for k in _RESUME_FREE_DATASET_KEYS)  # also where an older checkpoint holds them
    return setting_changes(stored, current, agree=lambda key, a, b: key.startswith(free))


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Open a Lightning checkpoint lazily (mmap), or raise CheckpointError naming the file."""
    advice = "move it aside (or delete it) and rerun to train this run from scratch, or use a new hydra.run.dir"
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception as e:
        raise CheckpointError(f"{path}: cannot resume, the checkpoint is unreadable (truncated or corrupt: "
                              f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); {advice}") from e
    required = ("state_dict", "epoch", "global_step", "loops")
    missing = [k for k in required if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: cannot resume, not a complete Lightning checkpoint "
                              f"(missing {', '.join(missing)}); {advice}")
    return ckpt


def resume_point(trainer: pl.Trainer, out: Path, fingerprint: dict[str, Any]) -> tuple[Path, Path | None]:
    """(the run's `last.ckpt`, the checkpoint this attempt resumes from: that file, or None to start afresh)."""
    last = last_checkpoint(trainer, out)
    return last, resume_path(last, fingerprint)


def resume_path(last: Path, fingerprint: dict[str, Any]) -> Path | None:
    """`last` if it exists, is readable and was written by a run with this fingerprint; None if absent."""
    if not last.exists():
        return None
    ckpt = read_checkpoint(last)
    stored = (ckpt.get(CHECKPOINT_KEY) or {}).get("fingerprint")
    if stored is None:
        log.warning("%s has no cfrec fingerprint (an older checkpoint); resuming without checking its configuration",
                    last)
    elif diffs := fingerprint_changes(stored, fingerprint):
        raise CheckpointError(
            f"{last}: cannot resume, it was written by a run with another configuration "
            f"({'; '.join(diffs[:5])}{'; ...' if len(diffs) > 5 else ''}); use a new hydra.run.dir, "
            f"or move the checkpoint aside to train this configuration from scratch here")
    log.info("resuming from %s (end of epoch %d, step %d)", last, ckpt["epoch"] + 1, ckpt["global_step"])
    return last


def checkpoint_epoch(path: Path) -> int:
    """The 0-based epoch at whose end the (readable) checkpoint `path` was written."""
    return int(read_checkpoint(path)["epoch"])


def last_checkpoint(trainer: pl.Trainer, out: Path) -> Path:
    """The `last.ckpt` the run's ModelCheckpoint writes (or `out/checkpoints/last.ckpt`)."""
    for cb in trainer.callbacks:
        if isinstance(cb, ModelCheckpoint) and cb.save_last and cb.dirpath:
            return Path(cb.dirpath) / f"{cb.CHECKPOINT_NAME_LAST}{cb.FILE_EXTENSION}"
    return out / "checkpoints" / "last.ckpt"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary file in their own folder, fsynced and renamed into place.

    Lightning's own write goes through a temporary file in the system temp folder that is moved into
    place, which is a plain (interruptible) copy when that folder is on another filesystem, as on most
    clusters; a kill then could leave a truncated `last.ckpt`. Remote paths (`s3://...`) keep Lightning's way.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(Path(path), buffer.getbuffer())


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, cheaper per epoch, with the same resume guarantees and one file of each kind.

    * `best-*.ckpt` (the epoch tested at the end) holds the model only (`save_weights_only` for the top-k
      files): the Adam moments, two thirds of a full checkpoint, are only needed to resume, which reads
      `last.ckpt`.
    * `last.ckpt` (full: weights, Adam, loops, callbacks, cfrec's fingerprint and history) is written at
      the end of the first epoch, at the end of every later epoch where that is cheap against the training
      since the previous write (the previous write took at most `last_overhead` of the time since it; null:
      every epoch), and always at the end of the last epoch (max_epochs, or a callback stopping). Where epochs
      are long against a write, as on every real dataset, a kill costs at most the epoch it interrupted.
      Lightning 2.6 writes it only at the epochs where the best checkpoint changes; here it is written
      whether or not validation improved.
    * A best checkpoint that a newer best replaces is deleted only once a `last.ckpt` that no longer
      refers to it is in place, so the files a `last.ckpt` names always exist; best checkpoints that no
      `last.ckpt` names (left by a killed attempt, or by a run this folder's state no longer knows) are
      deleted when training starts, so the folder holds one `best-*.ckpt` and one `last.ckpt`.
    * `keep_after_finish`: `all` keeps both once the run has finished (it can be resumed, extended and
      re-evaluated); `best` deletes `last.ckpt` after the test, keeping the tested weights only (a rerun
      then keeps the run's metrics.json: `finished_without_last`).

    A run killed between two writes resumes from the older `last.ckpt` and replays the epochs since:
    every epoch's batches and random draws are functions of (seed, epoch), so it ends with the same
    numbers as a run that was never stopped (on CPU, bit for bit).
    """

    KEEP = ("all", "best")

    def __init__(self, *args: Any, last_overhead: float | None = 0.05, keep_after_finish: str = "all",
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        if keep_after_finish not in self.KEEP:
            raise ConfigError(f"callbacks.model_checkpoint.keep_after_finish={keep_after_finish}: "
                              f"must be one of {', '.join(self.KEEP)}")
        if last_overhead is not None and not last_overhead >= 0:
            raise ConfigError(f"callbacks.model_checkpoint.last_overhead={last_overhead}: must be a number >= 0 "
                              f"(a share of the training time) or null (every epoch)")
        self.last_overhead = None if last_overhead is None else float(last_overhead)
        self.keep_after_finish = keep_after_finish
        self._last_written_at: float | None = None  # monotonic time at which this process's last write ended
        self._last_write_s = 0.0  # how long that write took
        self._last_written_step: int | None = None
        self._in_last = False  # inside our own call of _save_last_checkpoint

    # -- what is written ----------------------------------------------------------------------------

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        if self._in_last or self.save_weights_only:
            return super()._save_checkpoint(trainer, filepath)
        trainer.save_checkpoint(filepath, weights_only=True)  # a best (top-k) checkpoint: the model only
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            from weakref import proxy

            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))

    def _remove_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        if self._in_last or not self.save_last:
            return super()._remove_checkpoint(trainer, filepath)
        # a replaced best: still named by the last.ckpt on disk, deleted after the next one (`_remove_unnamed`)

    def _remove_unnamed(self, trainer: pl.Trainer) -> None:
        """Delete the best checkpoints in `dirpath` that the run's state (so the newest last.ckpt) does not name."""
        prefix = str(self.filename or "").split("{", 1)[0]
        if not self.dirpath or not prefix or not trainer.is_global_zero:
            return
        named = {Path(p).name for p in (self.best_model_path, self.last_model_path, *self.best_k_models) if p}
        for path in Path(self.dirpath).glob(f"{glob.escape(prefix)}*{self.FILE_EXTENSION}"):
            if path.name not in named and path.name != f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}":
                self._fs.rm(str(path))

    # -- when last.ckpt is written ------------------------------------------------------------------

    def _save_last_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict[str, Any]) -> None:
        """Lightning's own calls are ignored; `_write_last` decides."""
        if self._in_last:
            super()._save_last_checkpoint(trainer, monitor_candidates)

    def _due(self, trainer: pl.Trainer, now: float) -> bool:
        """Whether last.ckpt is written at this epoch end (class docstring)."""
        final = trainer.should_stop or (trainer.max_epochs is not None and trainer.max_epochs >= 0
                                        and trainer.current_epoch + 1 >= trainer.max_epochs)
        if final or self._last_written_at is None or self.last_overhead is None:
            return True
        return self._last_write_s <= self.last_overhead * (now - self._last_written_at)

    def _write_last(self, trainer: pl.Trainer, force: bool = False) -> None:
        if not self.save_last or self._last_written_step == trainer.global_step:
            return
        if trainer.fast_dev_run or trainer.sanity_checking or trainer.state.fn != "fit":
            return
        start = time.monotonic()
        if not (force or self._due(trainer, start)):
            return
        self._in_last = True
        try:
            super()._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
            self._remove_unnamed(trainer)
        finally:
            self._in_last = False
        self._last_written_at, self._last_written_step = time.monotonic(), trainer.global_step
        self._last_write_s = self._last_written_at - start

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        if trainer.ckpt_path:  # resumed: the checkpoint read holds this step already (a finished run writes nothing)
            self._last_written_step = trainer.global_step
        self._remove_unnamed(trainer)  # the last.ckpt on disk (if any) names only the state just restored

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._write_last(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._write_last(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # normally written already at the last epoch's end (above); this covers other ends (max_steps, max_time)
        self._write_last(trainer, force=True)

    def finish(self, trainer: pl.Trainer) -> None:
        """The run has been tested: with `keep_after_finish=best`, delete last.ckpt (the tested weights stay)."""
        last = Path(self.dirpath or "") / f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}"
        if self.keep_after_finish == "best" and self.dirpath and trainer.is_global_zero and last.is_file():
            last.unlink()
            log.info("%s deleted (keep_after_finish=best): the run keeps %s", last, Path(self.best_model_path).name)


class RunState(pl.Callback):
    """cfrec's entry in every checkpoint: the run's fingerprint (checked by `resume_path`) and the validation history
    so far (`record.history`), put back into the record when fitting resumes from the checkpoint. Loading one to
    validate or test it (the best epoch's) leaves the record alone. A callback rather than a CFModule hook, so that
    subclasses overriding `on_load_checkpoint` cannot lose it."""

    def __init__(self, fingerprint: dict[str, Any], record: RunRecord):
        self.fingerprint = fingerprint
        self.record = record

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {"fingerprint": self.fingerprint,
                                      "history": [dict(h) for h in self.record.history]}

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        if trainer.state.fn == "fit" and CHECKPOINT_KEY in checkpoint:  # resuming: the epochs trained before
            self.record.history = [dict(h) for h in checkpoint[CHECKPOINT_KEY].get("history", [])]


def finished_run(cfg: DictConfig, out: Path, counts: dict[str, Any], neural: bool) -> RunResult | None:
    """The result of this run, already finished in `out` with this configuration, else None (fit or resume it).

    A closed-form model keeps no checkpoint, so rerunning a sweep would refit it (SLIM: minutes per grid point): a
    successful fit whose seed, model, dataset options and split sizes match (`run_fingerprint`), with its per-user
    file (and recommendations.csv when `export.top_k` asks for one), is kept instead. A neural run is kept on the
    same terms only where it cannot resume, its last.ckpt deleted after its test (`finished_without_last`)."""
    stored = _finished(cfg, out, counts)
    if stored is None:
        return None
    if not neural:
        log.info("%s: already fitted with this configuration; kept (a new hydra.run.dir refits)", out)
        return stored
    if finished_without_last(cfg, stored):
        log.info("%s: finished with this configuration, its last.ckpt deleted (keep_after_finish=best); kept", out)
        return stored
    return None


def _finished(cfg: DictConfig, out: Path, counts: dict[str, Any]) -> RunResult | None:
    """The successful result in `out`, with its per-user file (and export), of a run with this fingerprint."""
    if not (out / PER_USER_FILE).is_file():
        return None
    try:
        stored = RunResult.read(out)
    except (OSError, DataError):
        return None
    if stored.status != "ok" or not isinstance(stored.config, dict) or not isinstance(stored.data, dict):
        return None
    if (cfg.get("export") or {}).get("top_k") and not (out / "recommendations.csv").is_file():
        return None
    if fingerprint_changes(run_fingerprint(OmegaConf.create(stored.config), stored.data), run_fingerprint(cfg, counts)):
        return None
    return stored


def finished_without_last(cfg: DictConfig, stored: RunResult) -> bool:
    """Whether a neural run's successful result `stored` (of this seed, model and data) stands as the run's result:
    its last.ckpt was deleted after the test (`keep_after_finish=best`), its tested checkpoint is there, and its
    budget (`trainer.max_epochs`, early stopping) is this one. With a last.ckpt the run is resumed as usual
    instead; with another budget it is trained again from scratch (nothing is left to extend)."""
    dirpath = OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath")
    best = stored.best_checkpoint
    folder = Path(dirpath) if dirpath else None
    if folder is None or not best or (folder / "last.ckpt").exists() or not (folder / Path(best).name).is_file():
        return False
    old, new = stored.config or {}, OmegaConf.to_container(cfg, resolve=True)
    changed = [key for key in ("trainer.max_epochs", "callbacks.early_stopping") if _get(old, key) != _get(new, key)]
    if changed:
        log.warning("%s: its last.ckpt was deleted after it finished (keep_after_finish=best) and %s changed; "
                    "training it again from scratch", dirpath, ", ".join(changed))
    return not changed


def _get(config: dict[str, Any], key: str) -> Any:
    """`config[a][b]` for key `a.b` (None where absent)."""
    for part in key.split("."):
        config = config.get(part) if isinstance(config, dict) else None
    return config
