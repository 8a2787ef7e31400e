"""One run: compose → fit → pick the best validation epoch → test it → write metrics.json atomically.

Reliability (docs/reliability.md): a neural run writes `checkpoints/last.ckpt` at the end of every
epoch and resumes from it when the same command is run again with the same output directory; the
random state of every epoch is a function of (seed, epoch) only, so a resumed run ends with the same
numbers as an uninterrupted one. A non-finite training loss stops the run before the bad update is
applied, so no checkpoint ever holds a diverged model.
"""

from __future__ import annotations

import json
import logging
import random
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException

from cfrec.data.cache import atomic_write_bytes, atomic_write_json
from cfrec.data.datamodule import CFDataModule
from cfrec.evaluation import evaluate
from cfrec.models.base import CFModule, FittedRecommender

log = logging.getLogger(__name__)

#: key of cfrec's own entry in a Lightning checkpoint (the run's fingerprint, checked on resume)
CHECKPOINT_KEY = "cfrec"
#: dataset keys that may change between the first attempt of a run and its resumption
_RESUME_FREE_DATASET_KEYS = ("cache_dir", "raw_path", "eval_batch_size")


class NonFiniteLossError(FloatingPointError):
    """The training loss (or, after an epoch, a parameter) became NaN or infinite."""


class CheckpointError(RuntimeError):
    """The checkpoint a run would resume from is unreadable or belongs to another configuration."""


class RunInterrupted(BaseException):
    """SIGTERM or Ctrl-C stopped training; the run resumes from its last checkpoint when rerun.

    A BaseException (like KeyboardInterrupt), so that a sweep stops too instead of going on.
    """

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


# --- per-epoch random state ---------------------------------------------------------------------


def epoch_seed(seed: int, epoch: int) -> int:
    """A 32-bit seed derived from (run seed, epoch) only."""
    return int(np.random.SeedSequence([int(seed) % 2**32, int(epoch)]).generate_state(1)[0])


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
        seed_all(epoch_seed(self.seed, trainer.current_epoch))


# --- non-finite loss ----------------------------------------------------------------------------


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
                f"non-finite training loss ({value}) at epoch {trainer.current_epoch} "
                f"(step {trainer.global_step}); {_last_good(trainer)}"
            )

    def _check_parameters(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        bad = [name for name, p in pl_module.named_parameters() if not bool(torch.isfinite(p.detach()).all())]
        if bad:
            raise NonFiniteLossError(
                f"non-finite parameters ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}) after the "
                f"updates of epoch {trainer.current_epoch} (step {trainer.global_step}); {_last_good(trainer)}"
            )

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self._check_parameters(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check_parameters(trainer, pl_module)


def _last_good(trainer: pl.Trainer) -> str:
    """Where the last checkpoint written before the failure is (never a state from this epoch)."""
    ckpt = trainer.checkpoint_callback
    path = getattr(ckpt, "last_model_path", "") or getattr(ckpt, "best_model_path", "")
    if not path or not Path(path).exists():
        return "no checkpoint had been written yet"
    try:
        epoch = torch.load(path, map_location="cpu", weights_only=False, mmap=True)["epoch"]
        return f"the last good checkpoint is {path} (end of epoch {epoch})"
    except Exception:  # only a message
        return f"the last good checkpoint is {path}"


# --- resume -------------------------------------------------------------------------------------


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


class RunState(pl.Callback):
    """cfrec's entry in every checkpoint: the run's fingerprint (checked by `resume_path`) and the
    model's per-epoch validation history, restored when fitting resumes (here rather than in a
    CFModule hook, so that subclasses overriding `on_load_checkpoint` cannot lose it)."""

    def __init__(self, fingerprint: dict[str, Any]):
        self.fingerprint = fingerprint

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        history = [dict(h) for h in getattr(pl_module, "history", [])]
        checkpoint[CHECKPOINT_KEY] = {"fingerprint": self.fingerprint, "history": history}

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        if hasattr(pl_module, "history") and CHECKPOINT_KEY in checkpoint:
            pl_module.history = [dict(h) for h in checkpoint[CHECKPOINT_KEY].get("history", [])]


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Open a Lightning checkpoint lazily (mmap), or raise CheckpointError naming the file."""
    advice = (f"move it aside (or delete it) and rerun to train this run from scratch, "
              f"or use a new hydra.run.dir")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception as e:
        raise CheckpointError(f"{path}: cannot resume, the checkpoint is unreadable (truncated or corrupt: "
                              f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); {advice}") from e
    missing = [k for k in ("state_dict", "epoch", "global_step", "loops") if not isinstance(ckpt, dict) or k not in ckpt]
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
        log.warning("%s has no cfrec fingerprint (an older checkpoint); resuming without checking its configuration", last)
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


def _last_checkpoint(trainer: pl.Trainer, out: Path) -> Path:
    """The `last.ckpt` the run's ModelCheckpoint writes (or `out/checkpoints/last.ckpt`)."""
    for cb in trainer.callbacks:
        if isinstance(cb, ModelCheckpoint) and cb.save_last and cb.dirpath:
            return Path(cb.dirpath) / f"{cb.CHECKPOINT_NAME_LAST}{cb.FILE_EXTENSION}"
    return out / "checkpoints" / "last.ckpt"


# --- fitting ------------------------------------------------------------------------------------


def _instantiate_group(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every `_target_` entry of a callbacks/logger group (empty or null → [])."""
    return [instantiate(c) for c in (cfg or {}).values() if isinstance(c, DictConfig) and "_target_" in c]


def fit_neural(cfg: DictConfig, model: CFModule, dm: CFDataModule, out: Path,
               extra_callbacks: list[pl.Callback] | None = None) -> dict[str, Any]:
    """Lightning fit (resuming from `checkpoints/last.ckpt` if present), then test the best epoch."""
    fingerprint = run_fingerprint(cfg, dm.split.counts())
    callbacks = [*_instantiate_group(cfg.get("callbacks")), EpochSeed(cfg.seed), FiniteGuard(), RunState(fingerprint),
                 *(extra_callbacks or [])]
    loggers = _instantiate_group(cfg.get("logger"))
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    last = _last_checkpoint(trainer, out)
    resume = resume_path(last, fingerprint)
    try:
        trainer.fit(model, datamodule=dm, ckpt_path=str(resume) if resume else None)
        history = list(model.history)  # loading the best checkpoint below replaces model.history
        checkpoint = trainer.checkpoint_callback
        best = checkpoint.best_model_path if checkpoint is not None and checkpoint.best_model_path else None
        trainer.validate(model, datamodule=dm, ckpt_path=best, verbose=False)
        trainer.test(model, datamodule=dm, ckpt_path=best, verbose=False)
    except SIGTERMException as e:
        raise RunInterrupted(f"stopped by SIGTERM at epoch {trainer.current_epoch} (step {trainer.global_step}); "
                             f"rerun the same command (same hydra.run.dir) to resume from {last}", 143) from e
    except SystemExit as e:  # Lightning turns Ctrl-C into a graceful shutdown and sys.exit(1)
        raise RunInterrupted(f"stopped by Ctrl-C at epoch {trainer.current_epoch} (step {trainer.global_step}); "
                             f"rerun the same command (same hydra.run.dir) to resume from {last}", 130) from e
    if best:
        best_epoch = torch.load(best, map_location="cpu", weights_only=False, mmap=True)["epoch"]
    else:
        best_epoch = trainer.current_epoch - 1
    return {"val": model.results["val"], "test": model.results["test"], "best_epoch": int(best_epoch),
            "epochs": int(trainer.current_epoch), "resumed_from": str(resume) if resume else None, "history": history,
            **({"beta_search": model.results["beta_search"]} if "beta_search" in model.results else {})}


def fit_closed_form(model: FittedRecommender, dm: CFDataModule) -> dict[str, Any]:
    """`fit` on the split, then evaluate validation and test users with the shared metrics."""
    split = dm.split
    model.fit(split)
    return {
        "val": evaluate(model, split.val_tr, split.val_te, dm.eval_batch_size, desc="validation"),
        "test": evaluate(model, split.test_tr, split.test_te, dm.eval_batch_size, desc="test"),
        "chosen": getattr(model, "chosen", {}),
    }


def run(cfg: DictConfig, output_dir: str | Path, choices: dict[str, str] | None = None,
        extra_callbacks: list[pl.Callback] | None = None) -> dict[str, Any]:
    """Train and test the configured model on the configured dataset; returns what metrics.json holds.

    `extra_callbacks` are added to the Lightning trainer of a neural model (tests inject faults with them).
    """
    out = Path(output_dir)
    pl.seed_everything(cfg.seed, workers=True)
    dm: CFDataModule = instantiate(cfg.dataset)
    dm.setup()
    model = instantiate(cfg.model, n_items=dm.n_items)
    start = time.perf_counter()
    if isinstance(model, FittedRecommender):
        result = fit_closed_form(model, dm)
    elif isinstance(model, CFModule):
        result = fit_neural(cfg, model, dm, out, extra_callbacks)
    else:
        raise TypeError(f"model={type(model).__name__} is neither a CFModule nor a FittedRecommender")
    metrics = {
        "status": "ok",
        "model": (choices or {}).get("model", type(model).__name__),
        "dataset": dm.name,
        "seed": int(cfg.seed),
        "choices": choices or {},
        "fit_seconds": round(time.perf_counter() - start, 3),
        "data": dm.split.counts(),
        **result,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    atomic_write_json(out / "metrics.json", metrics)
    test = metrics["test"]
    log.info("test: Recall@20 %.4f  Recall@50 %.4f  NDCG@100 %.4f (%d users)",
             test["recall@20"], test["recall@50"], test["ndcg@100"], test["n_users"])
    return metrics


def record_failure(cfg: DictConfig, output_dir: str | Path, choices: dict[str, str], error: BaseException,
                   status: str = "failed") -> None:
    """metrics.json with `status` ("failed" or "interrupted"), the error and its traceback.

    Never raises (the caller is handling `error`). A successful metrics.json already in the folder
    (an earlier attempt of this run) is kept as `metrics.previous.json` rather than lost.
    """
    out = Path(output_dir)
    try:
        try:
            config = OmegaConf.to_container(cfg, resolve=True)
        except Exception:  # the failure may be an unresolvable config itself
            config = OmegaConf.to_container(cfg, resolve=False)
        dataset = cfg.get("dataset", {}) if isinstance(cfg.get("dataset", {}), DictConfig) else {}
        previous = out / "metrics.json"
        try:
            if json.loads(previous.read_text()).get("status") == "ok":
                atomic_write_bytes(out / "metrics.previous.json", previous.read_bytes())
        except (OSError, ValueError, AttributeError):
            pass
        atomic_write_json(previous, {
            "status": status,
            "model": choices.get("model"),
            "dataset": dataset.get("name") if dataset else None,
            "seed": cfg.get("seed"),
            "choices": choices,
            "error": f"{type(error).__name__}: {error}",
            "traceback": "".join(traceback.format_exception(error)),
            "config": config,
        })
    except Exception as e:  # recording must never hide the error being handled
        log.error("could not write %s (%s: %s)", out / "metrics.json", type(e).__name__, e)
