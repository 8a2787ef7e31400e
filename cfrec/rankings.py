"""Score a ranking file made anywhere on a cfrec split's test users: `python -m cfrec.rankings RANKINGS.csv
[--name NAME] [--out DIR] [dataset overrides]`.

The file is CSV with a header naming at least `user`, `rank` and `item` (raw ids as in the raw data, the
ones `unique_uid.txt` / `unique_sid.txt` of a vae_cf export hold; further columns such as `score` are
ignored): each line puts one item at one rank of one user's list. Lines of users who are not test users
of the split are ignored (counted); a test user without a line counts as an empty list (reported); a
test user's fold-in items are removed from their list, the items below moving up, as cfrec's
evaluation never ranks them (counted). Only the first 100 positions are used. The metrics are cfrec's
(`cfrec.metrics`, `cfrec.beyond_accuracy`): the keys of metrics.json's `test`, printed as JSON; with `--out DIR`
a `DIR/metrics.json` that `python -m cfrec.report` lists beside cfrec's own runs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from cfrec.beyond_accuracy import BEYOND_K, BEYOND_KEYS, activity_quintiles, beyond_accuracy, item_popularity
from cfrec.data.sparse import to_torch_csr
from cfrec.data.split import Split
from cfrec.export import raw_item_ids, raw_user_ids
from cfrec.metrics import ranked_list_metrics, summarize

COLUMNS = ("user", "rank", "item")


class RankingFileError(ValueError):
    """A ranking file is malformed or does not fit the split; the message names `path:LINE`."""


@dataclass
class Rankings:
    """The test users' lists read from a ranking file, and what reading them changed."""

    items: np.ndarray  # (test users, ≤ BEYOND_K) item columns best first, -1 padding
    missing_users: list[str]  # raw ids of test users without a line in the file
    fold_in_removed: int  # lines dropped because they list one of the user's fold-in items
    other_users: int  # distinct users in the file that are not test users (their lines are ignored)


def _fail(path: Path, frame: pd.DataFrame, bad: np.ndarray, message: str) -> None:
    """Raise for the first row flagged in `bad`: `path:LINE: message` (LINE counts the header as 1)."""
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        row = frame.iloc[i]
        raise RankingFileError(f"{path}:{int(row['line'])}: " + message.format(**row.to_dict()))


def _read_table(path: Path) -> pd.DataFrame:
    """The user / rank / item columns as stripped strings, with each row's line number; blank lines dropped."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except pd.errors.ParserError as e:
        line = re.search(r"line (\d+)", str(e))
        raise RankingFileError(f"{path}:{line.group(1) if line else '?'}: {e}") from None
    except pd.errors.EmptyDataError:
        raise RankingFileError(f"{path}:1: empty file; expected a header naming user, rank, item") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise RankingFileError(f"{path}:1: the header names no {', '.join(missing)} column (got "
                               f"{','.join(frame.columns)}; expected user,rank,item[,...])")
    frame = frame[list(COLUMNS)].apply(lambda c: c.str.strip())
    frame["line"] = np.arange(len(frame)) + 2
    return frame[(frame[list(COLUMNS)] != "").any(axis=1)]


def read_rankings(path: str | Path, users: np.ndarray, item_ids: np.ndarray, fold_in: sp.csr_matrix) -> Rankings:
    """Read a `user,rank,item` file (module docstring) for the users `users` (raw ids of the rows of
    `fold_in`) over the items `item_ids` (raw ids of its columns)."""
    path = Path(path)
    frame = _read_table(path)
    _fail(path, frame, (frame[list(COLUMNS)] == "").any(axis=1).to_numpy(),
          "a line needs a user, a rank and an item (got user={user!r}, rank={rank!r}, item={item!r})")
    rank = pd.to_numeric(frame["rank"], errors="coerce").to_numpy(dtype=np.float64)
    _fail(path, frame, ~(np.isfinite(rank) & (rank >= 1) & (rank == np.floor(rank))),
          "rank {rank!r} is not a positive integer")
    user_index, item_index = pd.Index(np.asarray(users).astype(str)), pd.Index(np.asarray(item_ids).astype(str))
    col = item_index.get_indexer(frame["item"])
    _fail(path, frame, col < 0, f"item {{item!r}} is not among the split's {len(item_index)} items "
                                "(a ranking made on another split or dataset?)")
    for key, what in ((["user", "rank"], "rank {rank}"), (["user", "item"], "item {item!r}")):
        _fail(path, frame, frame.duplicated(key).to_numpy(), f"user {{user!r}} has {what} on two lines")
    row = user_index.get_indexer(frame["user"])
    ours = row >= 0
    other_users = int(frame.loc[~ours, "user"].nunique())
    row, col, rank = row[ours], col[ours], rank[ours]
    missing = np.setdiff1d(np.arange(len(user_index)), row)
    n_items = len(item_index)
    fold_in = fold_in.tocoo()
    seen = np.isin(row.astype(np.int64) * n_items + col, fold_in.row.astype(np.int64) * n_items + fold_in.col)
    row, col, rank = row[~seen], col[~seen], rank[~seen]
    order = np.lexsort((rank, row))
    row, col = row[order], col[order]
    starts = np.searchsorted(row, np.arange(len(user_index)))  # first line of each user in the sorted order
    position = np.arange(len(row)) - starts[row]
    top = position < BEYOND_K
    items = np.full((len(user_index), BEYOND_K), -1, dtype=np.int64)
    items[row[top], position[top]] = col[top]
    return Rankings(items, user_index[missing].tolist(), int(seen.sum()), other_users)


def score_rankings(items: np.ndarray, split: Split) -> tuple[dict[str, float], list[dict[str, Any]],
                                                              dict[str, torch.Tensor]]:
    """(metrics.json's `test` keys, its `by_activity.test`, the per-user values with `user` row indices) of ranked
    lists `items` (one row per test user, item columns best first, -1 padding): cfrec's metrics and
    beyond-accuracy figures, and NDCG@100 by quintile of the test users' fold-in activity."""
    per_user = ranked_list_metrics(torch.from_numpy(items), to_torch_csr(split.test_te))
    summary = summarize(per_user)
    summary.update(beyond_accuracy(items, split.n_items, item_popularity(split.train)))
    table = activity_quintiles(per_user["ndcg@100"].numpy(), split.test_tr.getnnz(axis=1))
    table = table.rename(columns={"mean": "ndcg@100", "se": "ndcg@100_se"})
    by_activity = json.loads(table.to_json(orient="records", double_precision=15))
    return summary, by_activity, {"user": torch.arange(items.shape[0]), **per_user}


def run_list_figures(split: Split, items: np.ndarray, scores: np.ndarray) -> tuple[dict[str, float], list[dict]]:
    """The beyond-accuracy figures and `by_activity.test` of a run's test lists (row order, best first; positions
    at −inf were fold-in items, left out)."""
    test, by_activity, _ = score_rankings(np.where(np.isfinite(scores), items, -1)[:, :BEYOND_K], split)
    return {k: test[k] for k in BEYOND_KEYS}, by_activity


def evaluate_file(path: str | Path, split: Split) -> tuple[dict[str, float], list[dict[str, Any]],
                                                           dict[str, torch.Tensor], Rankings]:
    """(`test` metrics, `by_activity.test`, per-user values, what was read) of a ranking file on `split`'s test
    users."""
    rankings = read_rankings(path, raw_user_ids(split, "test"), raw_item_ids(split), split.test_tr)
    return (*score_rankings(rankings.items, split), rankings)


def main(argv: list[str] | None = None) -> int:
    from omegaconf import OmegaConf

    from cfrec.config import prepared_dataset
    from cfrec.report.rows import rows
    from cfrec.run.per_user import FILENAME as PER_USER_FILE
    from cfrec.run.per_user import per_user_frame, write_per_user
    from cfrec.run.result import RunResult

    parser = argparse.ArgumentParser(prog="python -m cfrec.rankings", description=__doc__.split("\n\n")[0])
    parser.add_argument("rankings", help="CSV with header user,rank,item[,...] (raw ids)")
    parser.add_argument("overrides", nargs="*", help="dataset overrides as for train.py, e.g. dataset=ml-100k")
    parser.add_argument("--name", help="the row name the report gives this file (default: the file's stem)")
    parser.add_argument("--out", metavar="DIR", help="write DIR/metrics.json (for python -m cfrec.report)")
    args = parser.parse_args(argv)
    name = args.name or Path(args.rankings).stem
    if name in rows():
        parser.error(f"--name {name} is the name of cfrec's own row; the report would pool the two: choose another")
    cfg, dm = prepared_dataset(args.overrides, "cfrec.rankings")
    try:
        test, by_activity, per_user, rankings = evaluate_file(args.rankings, dm.split)
    except (RankingFileError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n_users = dm.split.test_tr.shape[0]
    if rankings.missing_users:
        shown = ", ".join(rankings.missing_users[:10]) + (", ..." if len(rankings.missing_users) > 10 else "")
        print(f"note: {len(rankings.missing_users)} of the {n_users} test users have no line in {args.rankings} "
              f"(counted as empty lists): {shown}", file=sys.stderr)
    if rankings.fold_in_removed:
        print(f"note: {rankings.fold_in_removed} lines listed a user's fold-in item; removed, as cfrec never "
              "ranks them", file=sys.stderr)
    if rankings.other_users:
        print(f"note: {rankings.other_users} users in the file are not test users of {dm.name}; their lines "
              "were ignored", file=sys.stderr)
    print(json.dumps(test, indent=2, sort_keys=True))
    if args.out:
        write_per_user(Path(args.out) / PER_USER_FILE, per_user_frame(dm.split, {"test": per_user}))
        RunResult(
            status="ok", model=name, dataset=dm.name, seed=None, choices={"model": name},
            test=test, by_activity={"test": by_activity},
            rankings={"path": str(Path(args.rankings).resolve()), "missing_users": rankings.missing_users,
                      "fold_in_removed": rankings.fold_in_removed, "other_users": rankings.other_users},
            data=dm.split.counts(),
            config={"row": name, "dataset": OmegaConf.to_container(cfg.dataset, resolve=True)}).write(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
