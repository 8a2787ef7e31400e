"""What a neural run's evaluation loops produce, collected as each loop ends by a callback that the run owns.

The model computes each loop's figures (`CFModule.results`, `per_user`, `test_top`: the latest loop's output,
overwritten by the next); `RunRecord` copies them out when the loop ends. So the run's result is held here, not on
the LightningModule: loading a checkpoint (the best epoch's, to test it) restores weights and never changes the
validation history or the tested figures. `cfrec.run.checkpoints.RunState` saves `history` into every checkpoint
and restores it when fitting resumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
import torch

STAGES = ("val", "test")


@dataclass(frozen=True)
class Evaluation:
    """One evaluation loop's result: the figures of `metrics.json`'s `val` / `test` and their per-user values."""

    summary: dict[str, float]  #: means, `_se` and `n_users` (and a model part's diagnostics, e.g. `psi_spread`)
    per_user: dict[str, torch.Tensor]  #: every evaluated user's metrics, with the users' row indices as `user`


class RunRecord(pl.Callback):
    """The result of one neural run, gathered from the model at the end of every validation and test loop."""

    def __init__(self) -> None:
        #: the validation figures of every training epoch (`epoch` 0-based), in order
        self.history: list[dict[str, Any]] = []
        #: the latest evaluation of each stage (after fitting: the tested checkpoint's)
        self.evaluated: dict[str, Evaluation] = {}
        #: the test users' top lists (items, scores) in row order, from the latest test loop
        self.test_top: tuple[torch.Tensor, torch.Tensor] | None = None
        #: what the model's parts returned after the last training epoch besides the stages (the β search's curve)
        self.parts: dict[str, Any] = {}

    def _collect(self, pl_module: pl.LightningModule, stage: str) -> None:
        self.evaluated[stage] = Evaluation(dict(pl_module.results[stage]), dict(pl_module.per_user[stage]))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._collect(pl_module, "val")
        if trainer.state.fn == "fit":
            self.history.append({"epoch": pl_module.current_epoch, **self.evaluated["val"].summary})
            self.parts = {k: v for k, v in pl_module.results.items() if k not in STAGES}

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._collect(pl_module, "test")
        self.test_top = pl_module.test_top
