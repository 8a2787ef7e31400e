"""`per_user.csv`: every evaluated user's metrics, the raw material of paired comparisons between rows.

One line per validation and test user with held-out items (`split,user,recall@20,recall@50,ndcg@100`),
users named by their raw id in the source file, so that runs of different models on the same split pair up
by user. The test lines average to metrics.json's test figures.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cfrec.data.split import Split
from cfrec.io import atomic_write_bytes
from cfrec.metrics import METRICS

FILENAME = "per_user.csv"
COLUMNS: tuple[str, ...] = ("split", "user", *(f"{name}@{k}" for name, k in METRICS))


def per_user_frame(split: Split, per_user: dict[str, dict[str, torch.Tensor]]) -> pd.DataFrame:
    """The per-user values of each stage ("val", "test") as one frame, users as raw ids, in row order.

    `per_user[stage]` holds `user` (row indices in the split) and one tensor per metric; users without
    held-out items (NaN) are left out, as `summarize` leaves them out of the means."""
    frames = []
    for stage in ("val", "test"):
        if stage not in per_user:
            continue
        values = per_user[stage]
        rows = values["user"].numpy()
        order = np.argsort(rows, kind="stable")
        frame = pd.DataFrame({"split": stage, "user": split.user_ids(stage)[rows[order]]})
        for column in COLUMNS[2:]:
            frame[column] = values[column].double().numpy()[order]
        frames.append(frame[~frame[list(COLUMNS[2:])].isna().any(axis=1)])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(COLUMNS))


def write_per_user(path: Path, frame: pd.DataFrame) -> None:
    """Write the frame as `per_user.csv` atomically (full float precision, so means are reproduced)."""
    buf = io.StringIO()
    frame.to_csv(buf, index=False, columns=list(COLUMNS), float_format="%.17g", lineterminator="\n")
    atomic_write_bytes(Path(path), buf.getvalue().encode())


def read_per_user(path: Path) -> pd.DataFrame:
    """A run's per_user.csv with users as strings; raises ValueError naming the file if its header is wrong."""
    frame = pd.read_csv(path, dtype={"split": str, "user": str})
    if tuple(frame.columns) != COLUMNS:
        raise ValueError(f"{path}: header {','.join(frame.columns)} is not {','.join(COLUMNS)}")
    return frame
