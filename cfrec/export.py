"""cfrec's split and recommendations in the formats other tools read.

`python -m cfrec.export vae_cf DIR [dataset overrides]` writes a split as Liang et al.'s vae_cf notebook
writes its `pro_sg/` folder (read by vae_cf, RecVAE, RaCT and the EASE ports):

- `train.csv`, `validation_tr.csv`, `validation_te.csv`, `test_tr.csv`, `test_te.csv`: header `uid,sid`,
  one line per interaction. uid numbers the users as the notebook does (its `profile2id`, over the
  permuted user list): training users 0 … T−1, then validation users, then test users, each in the
  split's row order; sid is the item column (the notebook's `show2id`, items in order of first
  appearance among training users);
- `unique_sid.txt`: the raw item id of sid 0, 1, … one per line (the notebook's file);
- `unique_uid.txt`: the raw user id of uid 0, 1, … one per line (cfrec's addition, for mapping back).

`write_recommendations` writes a run's `recommendations.csv` (`export.top_k=K` on `train.py`).
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from cfrec.data.split import PARTS, Split
from cfrec.io import atomic_write_bytes

log = logging.getLogger(__name__)

VAE_CF_FILES: dict[str, str] = {"train": "train.csv", "val_tr": "validation_tr.csv", "val_te": "validation_te.csv",
                                "test_tr": "test_tr.csv", "test_te": "test_te.csv"}
RECOMMENDATIONS_HEADER = ("user", "rank", "item", "score")


def raw_user_ids(split: Split, stage: str) -> np.ndarray:
    """The raw ids (strings) of the users of `stage` ("train", "val" or "test"), one per row."""
    ids = np.asarray(split.user_ids(stage))
    rows = getattr(split, "train" if stage == "train" else f"{stage}_tr").shape[0]
    if len(ids) != rows:
        raise ValueError(f"this split has no raw ids for its {rows} {stage} users (a split built by hand?)")
    return ids.astype(str)


def raw_item_ids(split: Split) -> np.ndarray:
    """The raw ids (strings) of the split's item columns."""
    ids = np.asarray(split.item_ids)
    if len(ids) != split.n_items:
        raise ValueError(f"this split has no raw ids for its {split.n_items} items (a split built by hand?)")
    return ids.astype(str)


def vae_cf_uid_offsets(split: Split) -> dict[str, int]:
    """The uid of row 0 of each part: training users first, then validation, then test users."""
    n_train, n_val = split.train.shape[0], split.val_tr.shape[0]
    return {"train": 0, "val_tr": n_train, "val_te": n_train, "test_tr": n_train + n_val,
            "test_te": n_train + n_val}


def _lines(ids: np.ndarray) -> bytes:
    """One id per line; an id holding a line break cannot be written this way."""
    if pd.Series(ids, dtype=str).str.contains("[\r\n]").any():
        raise ValueError("a raw id holds a line break; it cannot be written one per line")
    return ("\n".join(ids) + "\n").encode() if len(ids) else b""


def _warn_unreadable_edges(split: Split) -> None:
    """vae_cf's `load_tr_te_data` numbers rows from the smallest uid in its two files: a held-out part whose
    first or last user has no item at all (every item outside the vocabulary) would be read shifted."""
    for users in ("val", "test"):
        counts = getattr(split, f"{users}_tr").getnnz(axis=1) + getattr(split, f"{users}_te").getnnz(axis=1)
        if len(counts) and (counts[0] == 0 or counts[-1] == 0):
            log.warning("the first or last %s user has no items: vae_cf's load_tr_te_data will not see that row "
                        "(its files still hold the split exactly)", users)


def write_vae_cf(split: Split, directory: str | Path) -> list[Path]:
    """Write `split` as vae_cf's `pro_sg/` files (module docstring) into `directory`; returns the paths."""
    out = Path(directory)
    offsets = vae_cf_uid_offsets(split)
    written = []
    for part in PARTS:
        m = getattr(split, part).tocoo()  # from CSR: row-major, columns sorted within a row
        frame = pd.DataFrame({"uid": m.row.astype(np.int64) + offsets[part], "sid": m.col.astype(np.int64)})
        path = out / VAE_CF_FILES[part]
        atomic_write_bytes(path, frame.to_csv(index=False, lineterminator="\n").encode())
        written.append(path)
    uids = np.concatenate([raw_user_ids(split, stage) for stage in ("train", "val", "test")])
    for name, ids in (("unique_sid.txt", raw_item_ids(split)), ("unique_uid.txt", uids)):
        atomic_write_bytes(out / name, _lines(ids))
        written.append(out / name)
    _warn_unreadable_edges(split)
    return written


def write_recommendations(path: str | Path, users: np.ndarray, items: np.ndarray, scores: np.ndarray,
                          item_ids: np.ndarray) -> int:
    """Write `user,rank,item,score` (raw ids) atomically: row u of `items` / `scores` is user `users[u]`'s
    ranked list (item column indices best first; -1 or a score of −inf marks an excluded position, left
    out). Returns the number of lines written."""
    items, scores = np.asarray(items), np.asarray(scores, dtype=np.float64)
    keep = (items >= 0) & np.isfinite(scores)
    rank = np.cumsum(keep, axis=1)  # the kept positions of a row, counted from 1
    row, col = np.nonzero(keep)
    frame = pd.DataFrame({"user": np.asarray(users).astype(str)[row], "rank": rank[row, col],
                          "item": np.asarray(item_ids).astype(str)[items[row, col]], "score": scores[row, col]})
    buf = io.StringIO()
    frame.to_csv(buf, index=False, lineterminator="\n", float_format="%.9g")  # 9 digits: float32 exactly
    atomic_write_bytes(Path(path), buf.getvalue().encode())
    return len(frame)


def write_test_recommendations(path: str | Path, split: Split, items: np.ndarray, scores: np.ndarray,
                               top_k: int) -> int:
    """A run's `recommendations.csv`: the first `top_k` of its test users' lists (`items` / `scores` in the
    split's row order, fold-in positions at −inf)."""
    return write_recommendations(path, raw_user_ids(split, "test"), items[:, :top_k], scores[:, :top_k],
                                 raw_item_ids(split))


def main(argv: list[str] | None = None) -> int:
    from cfrec.config import prepared_dataset

    parser = argparse.ArgumentParser(prog="python -m cfrec.export",
                                     description="Write a cfrec split in another tool's format.")
    parser.add_argument("format", choices=("vae_cf",), help="vae_cf: Liang et al.'s pro_sg/ CSVs")
    parser.add_argument("directory", help="folder to write the files into (created if missing)")
    parser.add_argument("overrides", nargs="*", help="dataset overrides as for train.py, e.g. dataset=ml-100k")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    _, dm = prepared_dataset(args.overrides, "cfrec.export")
    for path in write_vae_cf(dm.split, args.directory):
        print(path)
    log.info("%s: %s", dm.name, dm.split.counts())
    return 0


if __name__ == "__main__":
    sys.exit(main())
