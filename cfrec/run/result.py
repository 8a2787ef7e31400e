"""A run's result, the one schema of metrics.json: built once when a run ends and written once, atomically.

Every writer of metrics.json (train.py runs and their failures, `cfrec.rankings`, `cfrec.rescore`) goes through
`RunResult.write`, and cfrec's own readers through `RunResult.read`. A key that does not apply to a run (a
closed-form fit has no epochs, a failure no metrics) is `ABSENT` and left out of the file; None is a value, written
as null (a fresh neural run's `resumed_from`). The file is key-sorted JSON. Epoch fields are 0-based indices;
people read them +1. docs/reliability.md's "metrics.json" table is `schema_table()`.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from cfrec.errors import DataError
from cfrec.io import atomic_write_json

FILENAME = "metrics.json"
Status = Literal["ok", "failed", "interrupted"]


class Absent(enum.Enum):
    """The type of `ABSENT`: a key this run's metrics.json leaves out (falsy, like an empty value)."""

    ABSENT = "absent"

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = Absent.ABSENT


def _key(meaning: str, required: bool = False) -> Any:
    """A field of metrics.json with its one-line meaning (the documented schema); optional ones default to ABSENT."""
    if required:
        return dataclasses.field(metadata={"meaning": meaning})
    return dataclasses.field(default=ABSENT, metadata={"meaning": meaning})


@dataclass(frozen=True)
class RunResult:
    """metrics.json, key by key (`| None`: the key may hold null)."""

    status: Status = _key('"ok", or "failed" / "interrupted" (SIGTERM, Ctrl-C) with `error` and `traceback`', True)
    model: str | None = _key("the model group's choice (e.g. `mult`), or the model's class name", True)
    dataset: str | None = _key("`dataset.name`", True)
    seed: int | None = _key("the run's seed (null for a scored rankings file)", True)
    choices: dict[str, str] | Absent = _key("Hydra's group choices (model, row, likelihood, ...)")
    train_seconds: float | Absent = _key("wall time of fitting and testing, in seconds")
    data: dict[str, dict[str, int]] | Absent = _key("users, items and interactions of each part of the split")
    split_fingerprint: str | Absent = _key("the split the run used (the report never pools runs of different splits)")
    val: dict[str, float] | Absent = _key("validation users' Recall@20/50 and NDCG@100: mean, `_se`, `n_users`")
    test: dict[str, float] | Absent = _key("the same on the test users, plus coverage, Gini and popularity @100")
    epochs: int | Absent = _key("neural: the number of training epochs run")
    best_epoch: int | Absent = _key("neural: 0-based index of the tested (best validation) epoch")
    stopped_early: bool | Absent = _key("neural: whether early stopping ended training before `trainer.max_epochs`")
    beta_cap_epoch: int | None | Absent = _key(
        "neural: 0-based index of the first epoch trained wholly at an annealed β's cap (null: β never gets there)")
    best_checkpoint: str | None | Absent = _key("neural: the tested checkpoint (null: no checkpoint callback)")
    resumed_from: str | None | Absent = _key("neural: the `last.ckpt` this attempt resumed from (null: none)")
    history: list[dict[str, float]] | Absent = _key("neural: every epoch's validation figures, `epoch` 0-based")
    beta_search: dict[str, Any] | Absent = _key("β search runs: validation NDCG@100 against β, and the best β")
    chosen: dict[str, Any] | Absent = _key("closed-form: hyperparameters chosen on the validation users (EASE's λ)")
    warnings: list[str] | Absent = _key("what the run flagged, e.g. a tested epoch that is not the best one")
    by_activity: dict[str, Any] | Absent = _key("test NDCG@100 by quintile of the users' fold-in activity")
    provenance: dict[str, Any] | Absent = _key("code commit and dirty flag, torch, Lightning, precision, device")
    rescored: dict[str, Any] | Absent = _key("`python -m cfrec.rescore`: when, and from which checkpoint")
    rankings: dict[str, Any] | Absent = _key("`python -m cfrec.rankings`: the file scored and what was left out")
    error: str | Absent = _key("failures: `Type: message`, and its root cause")
    traceback: str | Absent = _key("failures: the Python traceback")
    config: dict[str, Any] | Absent = _key("the whole resolved config (the run's settings, for the report)")

    def to_json(self) -> dict[str, Any]:
        """The file's content: every key that applies to this run (null where None), in the schema's order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not ABSENT}

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
        """The result a metrics.json holds; a key outside the schema, or a required one missing, is a DataError
        naming it and `source`."""
        fields = dataclasses.fields(cls)
        unknown = sorted(set(data) - {f.name for f in fields})
        if unknown:
            raise DataError(f"{source}: keys outside metrics.json's schema (cfrec/run/result.py): "
                            f"{', '.join(unknown)}")
        missing = [f.name for f in fields if f.default is dataclasses.MISSING and f.name not in data]
        if missing:
            raise DataError(f"{source}: missing {', '.join(missing)}")
        return cls(**data)

    @classmethod
    def read(cls, path: str | Path) -> RunResult:
        """`from_json` of a file (a folder means its metrics.json); unreadable JSON is a DataError naming it."""
        path = Path(path)
        path = path / FILENAME if path.is_dir() else path
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: not JSON ({e})") from e
        if not isinstance(data, dict):
            raise DataError(f"{path}: not a JSON object")
        return cls.from_json(data, str(path))


def schema_table() -> str:
    """metrics.json's keys and their meanings as a Markdown table (docs/reliability.md holds it)."""
    lines = ["| Key | Meaning |", "|---|---|"]
    lines += [f"| `{f.name}` | {f.metadata['meaning']} |" for f in dataclasses.fields(RunResult)]
    return "\n".join(lines)
