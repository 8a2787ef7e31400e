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
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from lightning_fabric.plugins import CheckpointIO
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import EarlyStopping
from pytorch_lightning.utilities.exceptions import SIGTERMException
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from cfrec.beyond_accuracy import BEYOND_K
from cfrec.config import build_model
from cfrec.data.datamodule import CFDataModule
from cfrec.data.fingerprint import split_fingerprint
from cfrec.export import write_test_recommendations
from cfrec.io import atomic_write_bytes
from cfrec.metrics import evaluate_lists, summarize_per_user
from cfrec.models.base import CFModule, FittedRecommender
from cfrec.models.schedules import Schedule, cap_epoch
from cfrec.rankings import run_list_figures
from cfrec.run.callbacks import EpochSeed, FiniteGuard
from cfrec.run.checkpoints import (
    AtomicCheckpointIO,
    RunCheckpoint,
    RunState,
    checkpoint_epoch,
    finished_run,
    resume_point,
    run_fingerprint,
)
from cfrec.run.loggers import finish_wandb, resume_logs
from cfrec.run.per_user import FILENAME as PER_USER_FILE
from cfrec.run.per_user import per_user_frame, write_per_user
from cfrec.run.provenance import provenance
from cfrec.run.record import RunRecord
from cfrec.run.result import FILENAME, RunResult, Status

log = logging.getLogger(__name__)


class RunInterrupted(BaseException):
    """SIGTERM or Ctrl-C stopped training; the run resumes from its last checkpoint when rerun.

    A BaseException (like KeyboardInterrupt), so that a sweep stops too instead of going on.
    """

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Fit:
    """What fitting a model hands to `run`: the tested figures, their per-user values, the test users' top lists,
    and the metrics.json fields of this kind of model (`RunResult`'s names: epochs and history, or `chosen`)."""

    val: dict[str, float]
    test: dict[str, float]
    per_user: dict[str, dict[str, torch.Tensor]]  #: per stage, with the users' row indices as `user`
    test_top: tuple[torch.Tensor, torch.Tensor]  #: (items, scores) of every test user, row order, best first
    fields: dict[str, Any]


# --- fitting ------------------------------------------------------------------------------------


def _instantiate_group(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every `_target_` entry of a callbacks/logger group (empty or null → [])."""
    return [instantiate(c) for c in (cfg or {}).values() if isinstance(c, DictConfig) and "_target_" in c]


def fit_neural(cfg: DictConfig, model: CFModule, dm: CFDataModule, out: Path,
               extra_callbacks: list[pl.Callback] | None = None) -> Fit:
    """Lightning fit (resuming from `checkpoints/last.ckpt` if present), then test the best epoch.

    The figures come from the run's `RunRecord`, never from the model, so loading the best checkpoint to test it
    cannot change them. `epochs` is the number of training epochs run; `stopped_early` whether early stopping
    ended them before `trainer.max_epochs` (`callbacks.early_stopping.patience`); `beta_cap_epoch` the 0-based
    index of the first epoch trained entirely at an annealed β's cap (None: β does not ramp, or never reaches it)."""
    fingerprint = run_fingerprint(cfg, dm.split.counts())
    record = RunRecord()
    callbacks = [*_instantiate_group(cfg.get("callbacks")), EpochSeed(cfg.seed), FiniteGuard(), record,
                 RunState(fingerprint, record), *(extra_callbacks or [])]
    loggers = _instantiate_group(cfg.get("logger"))
    plugins = list(instantiate(cfg.trainer.plugins)) if cfg.trainer.get("plugins") else []
    if not any(isinstance(p, CheckpointIO) for p in plugins):
        plugins.append(AtomicCheckpointIO())
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=plugins)
    last, resume = resume_point(trainer, out, fingerprint)
    finished = False
    try:
        resume_logs(loggers, checkpoint_epoch(resume) if resume else -1)  # csv/metrics.csv, W&B: the epochs kept
        # weights_only=False: these are the run's own checkpoints, and a model's hparams may hold OmegaConf
        # containers, which torch>=2.6's default weights-only unpickler refuses
        with warnings.catch_warnings():
            if resume:  # the folder holds this run's own checkpoints: Lightning's "not empty" warning is noise
                warnings.filterwarnings("ignore", r"Checkpoint directory .* exists and is not empty")
            trainer.fit(model, datamodule=dm, ckpt_path=str(resume) if resume else None, weights_only=False)
        # read before the best checkpoint is loaded below, which may restore the callbacks' state (early stopping's)
        epochs = int(trainer.current_epoch)
        schedule = getattr(model, "beta", None)
        beta_cap = cap_epoch(schedule, int(trainer.num_training_batches), int(trainer.max_epochs)) \
            if isinstance(schedule, Schedule) else None
        stopped_early = any(isinstance(c, EarlyStopping) and c.stopped_epoch > 0 for c in trainer.callbacks)
        checkpoint = trainer.checkpoint_callback
        best = checkpoint.best_model_path if checkpoint is not None and checkpoint.best_model_path else None
        if best and getattr(checkpoint, "dirpath", None) and (Path(checkpoint.dirpath) / Path(best).name).exists():
            best = str(Path(checkpoint.dirpath) / Path(best).name)  # the run folder was moved or copied since
        trainer.validate(model, datamodule=dm, ckpt_path=best, verbose=False, weights_only=False)
        trainer.test(model, datamodule=dm, ckpt_path=best, verbose=False, weights_only=False)
        finished = True
        if isinstance(checkpoint, RunCheckpoint):
            checkpoint.finish(trainer)  # keep_after_finish=best: last.ckpt goes, the tested weights stay
    except SIGTERMException as e:
        raise RunInterrupted(f"stopped by SIGTERM at epoch {trainer.current_epoch + 1} (step {trainer.global_step}); "
                             f"rerun the same command (same hydra.run.dir) to resume from {last}", 143) from e
    except SystemExit as e:  # Lightning turns Ctrl-C into a graceful shutdown and sys.exit(1)
        raise RunInterrupted(f"stopped by Ctrl-C at epoch {trainer.current_epoch + 1} (step {trainer.global_step}); "
                             f"rerun the same command (same hydra.run.dir) to resume from {last}", 130) from e
    finally:
        finish_wandb(loggers, finished)
    if best:
        best_epoch = torch.load(best, map_location="cpu", weights_only=False, mmap=True)["epoch"]
    else:
        best_epoch = epochs - 1
    monitor = str(cfg.get("optimized_metric") or "val/ndcg@100").removeprefix("val/")
    mode = getattr(trainer.checkpoint_callback, "mode", "max")
    warning = check_tested_epoch(record.history, int(best_epoch), monitor, mode)
    if warning:
        log.warning(warning)
    fields = {"best_epoch": int(best_epoch), "epochs": epochs, "stopped_early": stopped_early,
              "beta_cap_epoch": beta_cap, "best_checkpoint": best, "resumed_from": str(resume) if resume else None,
              "history": record.history, "provenance": provenance(str(trainer.precision), model.device.type),
              **({"warnings": [warning]} if warning else {}),
              **({"beta_search": record.parts["beta_search"]} if "beta_search" in record.parts else {})}
    return Fit(record.evaluated["val"].summary, record.evaluated["test"].summary,
               {stage: e.per_user for stage, e in record.evaluated.items()}, record.test_top, fields)


def check_tested_epoch(history: list[dict[str, float]], tested: int, metric: str, mode: str = "max") -> str | None:
    """None when the tested epoch has the best validation `metric` of the run (ties allowed), else what is wrong:
    the protocol tests the best validation epoch, and a checkpoint that is not it must not pass unnoticed."""
    values = {int(h["epoch"]): float(h[metric]) for h in history if metric in h}
    if tested not in values:
        return None
    best = (max if mode == "max" else min)(values, key=values.__getitem__)
    if values[best] == values[tested]:
        return None
    return (f"the tested checkpoint is epoch {tested} ({metric} {values[tested]:.4f}), not the best validation "
            f"epoch {best} ({values[best]:.4f}); rerun from scratch to test the best one")


def fit_closed_form(model: FittedRecommender, dm: CFDataModule, top_k: int = 100) -> Fit:
    """`fit` on the split, then evaluate validation and test users with the shared metrics (keeping the test
    users' top `top_k` lists)."""
    split = dm.split
    model.fit(split)
    per_user, *test_top = evaluate_lists(model, split.test_tr, split.test_te, dm.eval_batch_size, desc="test",
                                         top_k=top_k)
    per_user = {"val": evaluate_lists(model, split.val_tr, split.val_te, dm.eval_batch_size, desc="validation")[0],
                "test": per_user}
    return Fit(summarize_per_user(per_user["val"]), summarize_per_user(per_user["test"]), per_user, tuple(test_top),
               {"chosen": getattr(model, "chosen", {}), "provenance": provenance(None, "cpu")})


def run(cfg: DictConfig, output_dir: str | Path, choices: dict[str, str] | None = None,
        extra_callbacks: list[pl.Callback] | None = None) -> dict[str, Any]:
    """Train and test the configured model on the configured dataset (or keep the result of this run already
    finished in `output_dir`: `finished_run`); returns what metrics.json holds.

    `extra_callbacks` are added to the Lightning trainer of a neural model (tests inject faults with them).
    """
    out = Path(output_dir)
    pl.seed_everything(cfg.seed, workers=True)
    dm: CFDataModule = instantiate(cfg.dataset)
    dm.setup()
    model = build_model(cfg.model, dm.n_items)
    start = time.perf_counter()
    top_k = (cfg.get("export") or {}).get("top_k")
    if not isinstance(model, CFModule | FittedRecommender):
        raise TypeError(f"model={type(model).__name__} is neither a CFModule nor a FittedRecommender")
    if (done := finished_run(cfg, out, dm.split.counts(), neural=isinstance(model, CFModule))) is not None:
        return done.to_json()
    if isinstance(model, FittedRecommender):
        fit = fit_closed_form(model, dm, max(BEYOND_K, top_k or 0))
    else:
        model.top_k = max(BEYOND_K, top_k or 0)
        fit = fit_neural(cfg, model, dm, out, extra_callbacks)
    per_user = per_user_frame(dm.split, fit.per_user)
    items, scores = (t.numpy() for t in fit.test_top)  # every test user's, also under DDP
    beyond, by_activity = run_list_figures(dm.split, items, scores)
    result = RunResult(
        status="ok",
        model=(choices or {}).get("model", type(model).__name__),
        dataset=dm.name,
        seed=int(cfg.seed),
        choices=choices or {},
        train_seconds=round(time.perf_counter() - start, 3),
        data=dm.split.counts(),
        split_fingerprint=split_fingerprint(dm),  # the report never pools runs of different splits
        val=fit.val,
        test={**fit.test, **beyond},
        by_activity={"test": by_activity},
        config=OmegaConf.to_container(cfg, resolve=True),
        **fit.fields,
    )
    if rank_zero_only.rank == 0:  # under DDP every rank holds the same gathered metrics
        if top_k:
            write_test_recommendations(out / "recommendations.csv", dm.split, items, scores, top_k)
        write_per_user(out / PER_USER_FILE, per_user)  # before metrics.json, the run's commit marker
        result.write(out)
    test = result.test
    log.info("test: Recall@20 %.4f  Recall@50 %.4f  NDCG@100 %.4f (%d users)",
             test["recall@20"], test["recall@50"], test["ndcg@100"], test["n_users"])
    return result.to_json()


def describe_error(error: BaseException) -> str:
    """`Type: message`, plus the innermost `__cause__` when there is one: Hydra's InstantiationException
    says only that a `_target_` could not be located, its cause says why (a missing package, say)."""
    text = f"{type(error).__name__}: {error}"
    root = error
    while root.__cause__ is not None:
        root = root.__cause__
    return text if root is error else f"{text} (caused by {type(root).__name__}: {root})"


def record_failure(cfg: DictConfig, output_dir: str | Path, choices: dict[str, str], error: BaseException,
                   status: Status = "failed") -> None:
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
        dataset = cfg.get("dataset")
        previous = out / FILENAME
        try:  # any successful record is kept, byte for byte, whatever it holds
            if json.loads(previous.read_text()).get("status") == "ok":
                atomic_write_bytes(out / "metrics.previous.json", previous.read_bytes())
        except (OSError, ValueError, AttributeError):
            pass
        RunResult(
            status=status,
            model=choices.get("model"),
            dataset=dataset.get("name") if isinstance(dataset, DictConfig) else None,
            seed=cfg.get("seed"),
            choices=choices,
            error=describe_error(error),
            traceback="".join(traceback.format_exception(error)),
            config=config,
        ).write(out)
    except Exception as e:  # recording must never hide the error being handled
        log.error("could not write %s (%s: %s)", out / FILENAME, type(e).__name__, e)
