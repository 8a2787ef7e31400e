"""The two questions every model answers: how to fit, and `score(fold_in) -> scores over all items`.

`CFModule` is the LightningModule base of the neural models: it owns validation and test (Liang's
fold-in evaluation with the shared metrics), so a subclass only writes `training_step` and `score`.
`FittedRecommender` is the base of models fitted outside a gradient loop (EASE, WMF, SLIM, popularity).
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl
import scipy.sparse as sp
import torch

from cfrec.metrics import ranked_metrics, summarize

if TYPE_CHECKING:  # only for annotations: cfrec.data imports the models' modules at run time
    from cfrec.data.split import Split


class CFModule(pl.LightningModule, abc.ABC):
    """Neural recommender: batches of training rows in, logits over all items out.

    Validation and test batches are `(fold_in, heldout[, users])` sparse rows; per-user metrics are
    gathered over the epoch and logged as `val/ndcg@100`, `val/recall@20`, ... (and `_se`). The latest loop's
    output of each stage is left in `results[stage]`, `per_user[stage]` (with the users' row indices) and, for
    the test, `test_top`, each overwritten by the next loop; a run's result is what its callbacks copy out of
    them when a loop ends (`cfrec.run.record`), so nothing here is restored from a checkpoint.
    """

    def __init__(self) -> None:
        super().__init__()
        self._per_user: dict[str, list[torch.Tensor]] = {}
        self.results: dict[str, Any] = {}  # the latest loop's figures of each stage
        self.per_user: dict[str, dict[str, torch.Tensor]] = {}
        self.top_k = 100  # items kept per evaluated user (the beyond-accuracy figures' 100, or export.top_k)
        self._top: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.test_top: tuple[torch.Tensor, torch.Tensor] | None = None  # test users' (items, scores), row order

    @abc.abstractmethod
    def score(self, fold_in: torch.Tensor) -> torch.Tensor:
        """Scores (B, I) for users given their fold-in rows (sparse or dense); higher = recommend."""

    def _eval_step(self, batch: tuple[torch.Tensor, ...], full_precision: bool = False) -> None:
        """Rank one batch of evaluated users; `full_precision` scores them outside autocast (the test stage: its
        metrics and recommendations.csv come from float32 scores, which bf16 logits would tie by the thousand)."""
        fold_in, heldout = batch[0], batch[1]
        users = batch[2] if len(batch) > 2 and batch[2] is not None else None
        if users is None:  # a plain (fold_in, heldout) pair: rows in order of arrival
            seen = sum(v.numel() for v in self._per_user.get("user", []))
            users = torch.arange(seen, seen + fold_in.shape[0])
        self._per_user.setdefault("user", []).append(users.detach().to(torch.float64).cpu())
        if full_precision:
            with torch.autocast(self.device.type, enabled=False):
                logits = self.score(fold_in).float()
        else:
            logits = self.score(fold_in)
        per_user, items, scores = ranked_metrics(logits, fold_in, heldout, self.top_k)
        for name, values in per_user.items():
            self._per_user.setdefault(name, []).append(values.detach().cpu())
        self._top.append((items[:, : self.top_k].cpu(), scores[:, : self.top_k].detach().float().cpu()))

    def _eval_epoch_end(self, stage: str) -> None:
        gathered = {k: self._gather(torch.cat(v)) for k, v in self._per_user.items()}
        self._per_user = {}
        users = gathered.pop("user")
        real = ~torch.isnan(users)  # DDP gathers pad every rank's values with NaN at the same places
        self.per_user[stage] = {"user": users[real].long(), **{k: v[real] for k, v in gathered.items()}}
        top, self._top = self._top, []
        if stage == "test":
            self.test_top = self._gather_lists(top, users, real)
        summary = summarize(gathered)
        self.results[stage] = summary
        for name, value in summary.items():
            self.log(f"{stage}/{name}", float(value), prog_bar=name == "ndcg@100")

    def _gather(self, values: torch.Tensor) -> torch.Tensor:
        """Per-user values of every DDP rank (each evaluates its own users); NaN padding is skipped later."""
        if self.trainer is None or self.trainer.world_size == 1:
            return values
        longest = int(self.all_gather(torch.tensor(values.numel(), device=self.device)).max())
        padded = torch.full((longest,), float("nan"), dtype=values.dtype, device=self.device)
        padded[: values.numel()] = values.to(self.device)
        return self.all_gather(padded).reshape(-1).cpu()

    def _gather_lists(self, top: list[tuple[torch.Tensor, torch.Tensor]], users: torch.Tensor,
                      real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The (items, scores) lists of every DDP rank, as `_gather` lays out `users` (one row per user, NaN rows
        padding a rank), put in the order of the users' row indices."""
        items, scores = torch.cat([i for i, _ in top]), torch.cat([s for _, s in top])
        width = items.shape[1]
        rows = torch.cat([items.to(torch.float64), scores.to(torch.float64)], dim=1)  # exact for both
        rows = self._gather(rows.reshape(-1)).reshape(-1, 2 * width)[real]
        order = torch.argsort(users[real])
        return rows[order, :width].long(), rows[order, width:].float()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, full_precision=True)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")


class FittedRecommender(abc.ABC):
    """Recommender fitted in closed form or by its own solver on the training matrix.

    `fit` receives the whole `Split`, so a model may choose its hyperparameters on the validation
    users (EASE's λ grid); it must never look at `test_tr` / `test_te`.
    """

    #: hyperparameters chosen during `fit` (written to metrics.json)
    chosen: dict[str, Any]

    @abc.abstractmethod
    def fit(self, split: Split) -> FittedRecommender:
        """Learn from `split.train` (and optionally `split.val_tr` / `split.val_te`)."""

    @abc.abstractmethod
    def score(self, fold_in: sp.csr_matrix) -> torch.Tensor:
        """Scores (B, I) for a batch of fold-in rows given as a scipy CSR matrix."""
