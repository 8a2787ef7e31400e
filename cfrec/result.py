"""A run's result, the one schema of metrics.json: built once when a run ends and written once, atomically.

Every writer of metrics.json (train.py runs, failures, `cfrec.rankings`, `cfrec.rescore`) goes through `RunResult`,
and every reader can use `RunResult.read`. Keys that do not apply to a run (a closed-form fit has no epochs, a
failure no metrics) are left out of the file. Epoch fields are 0-based indices; people read them +1.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cfrec.io import atomic_write_json

FILENAME = "metrics.json"
Status = Literal["ok", "failed", "interrupted"]


@dataclass(frozen=True)
class RunResult:
    """metrics.json, key by key (in the file's order)."""

    status: Status  #: "ok", or "failed" / "interrupted" with `error` and `traceback`
    model: str | None  #: the model group's choice (e.g. "mult") or the model's class name
    dataset: str | None  #: dataset.name
    seed: int | None
    choices: dict[str, str] = field(default_factory=dict)  #: Hydra's group choices (model, row, likelihood, ...)
    train_seconds: float | None = None  #: wall time of fitting and testing
    data: dict[str, dict[str, int]] | None = None  #: users / items / interactions of each part of the split
    val: dict[str, float] | None = None  #: validation users' Recall@20/50, NDCG@100 (mean, `_se`, `n_users`)
    test: dict[str, float] | None = None  #: the same on the test users, plus the beyond-accuracy figures
    epochs: int | None = None  #: neural: training epochs run
    best_epoch: int | None = None  #: neural: index of the tested (best validation) epoch
    stopped_early: bool | None = None  #: neural: whether early stopping ended training before trainer.max_epochs
    beta_cap_epoch: int | None = None  #: annealed β: index of the first epoch trained entirely at the cap
    best_checkpoint: str | None = None  #: neural: the tested checkpoint
    resumed_from: str | None = None  #: neural: the last.ckpt this attempt resumed from
    history: list[dict[str, float]] | None = None  #: neural: every epoch's validation metrics (`epoch` 0-based)
    beta_search: dict[str, Any] | None = None  #: β search runs: the curve and the best β
    chosen: dict[str, Any] | None = None  #: closed-form: hyperparameters chosen on validation users (EASE's λ)
    warnings: list[str] | None = None  #: e.g. a tested epoch that is not the best validation epoch
    by_activity: dict[str, Any] | None = None  #: test NDCG@100 by users' activity quintile (Liang et al. Fig. 3)
    provenance: dict[str, Any] | None = None  #: code commit and dirty flag, torch, Lightning, precision, device
    rescored: dict[str, Any] | None = None  #: `python -m cfrec.rescore`: when and with which code
    error: str | None = None  #: failures: `Type: message` (and its root cause)
    traceback: str | None = None  #: failures
    config: dict[str, Any] | None = None  #: the whole resolved config (the run's settings, for the report)

    def to_json(self) -> dict[str, Any]:
        """The file's content: every key that applies to this run, in the schema's order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}

    def write(self, out: str | Path) -> Path:
        """Write `out/metrics.json` atomically (the run's commit marker: written after its other files)."""
        path = Path(out) / FILENAME
        atomic_write_json(path, self.to_json())
        return path

    def replace(self, **changes: Any) -> RunResult:
        """A copy with `changes` (a rescore's new test figures, say)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = FILENAME) -> RunResult:
        """The result a metrics.json holds; a key outside the schema is an error naming it and `source`."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: keys outside metrics.json's schema (cfrec/result.py): {', '.join(unknown)}")
        missing = [k for k in ("status", "model", "dataset", "seed") if k not in data]
        if missing:
            raise ValueError(f"{source}: missing {', '.join(missing)}")
        return cls(**data)

    @classmethod
    def read(cls, path: str | Path) -> RunResult:
        """`from_json` of a file (a folder means its metrics.json)."""
        path = Path(path)
        path = path / FILENAME if path.is_dir() else path
        return cls.from_json(json.loads(path.read_text()), str(path))
