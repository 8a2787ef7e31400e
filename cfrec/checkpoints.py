"""Resuming a run: its fingerprint, reading and checking `last.ckpt`, and atomic checkpoint writes."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint

from cfrec.callbacks import CHECKPOINT_KEY
from cfrec.data.cache import atomic_write_bytes

log = logging.getLogger(__name__)

#: dataset keys that may change between the first attempt of a run and its resumption
_RESUME_FREE_DATASET_KEYS = ("cache_dir", "raw_path", "eval_batch_size")


class CheckpointError(RuntimeError):
    """The checkpoint a run would resume from is unreadable or belongs to another configuration."""


def run_fingerprint(cfg: DictConfig, counts: dict[str, Any]) -> dict[str, Any]:
    """What must not change between the attempts of one run: seed, model, dataset options and split sizes."""
    c = OmegaConf.to_container(cfg, resolve=True)
    dataset = {k: v for k, v in (c.get("dataset") or {}).items() if k not in _RESUME_FREE_DATASET_KEYS}
    fingerprint = {"seed": c.get("seed"), "model": c.get("model"), "dataset": dataset, "data": counts}
    return json.loads(json.dumps(fingerprint, sort_keys=True, default=str))


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): obj}


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


def resume_path(last: Path, fingerprint: dict[str, Any]) -> Path | None:
    """`last` if it exists, is readable and was written by a run with this fingerprint; None if absent."""
    if not last.exists():
        return None
    ckpt = read_checkpoint(last)
    stored = (ckpt.get(CHECKPOINT_KEY) or {}).get("fingerprint")
    if stored is None:
        log.warning("%s has no cfrec fingerprint (an older checkpoint); resuming without checking its configuration",
                    last)
    elif stored != fingerprint:
        old, new = _flatten(stored), _flatten(fingerprint)
        diffs = [f"{k}: {old.get(k, '<absent>')!r} -> {new.get(k, '<absent>')!r}"
                 for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)]
        raise CheckpointError(
            f"{last}: cannot resume, it was written by a run with another configuration "
            f"({'; '.join(diffs[:5])}{'; ...' if len(diffs) > 5 else ''}); use a new hydra.run.dir, "
            f"or move the checkpoint aside to train this configuration from scratch here")
    log.info("resuming from %s (end of epoch %d, step %d)", last, ckpt["epoch"], ckpt["global_step"])
    return last


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
