"""How the report writes things: numbers in Markdown and CSV, one-line error text, dataset and metric labels,
and the order datasets are shown in (the paper's three first)."""

from __future__ import annotations

import math
import re
from typing import Any

DATASET_LABELS = {"ml-20m": "ML-20M", "netflix": "Netflix", "msd": "MSD"}
METRIC_LABELS = {"recall@20": "Recall@20", "recall@50": "Recall@50", "ndcg@100": "NDCG@100"}
_PAPER_DATASET_ORDER = ("ml-20m", "netflix", "msd")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def dataset_label(name: str) -> str:
    """The paper's name of a dataset (ML-20M), else the preset's name."""
    return DATASET_LABELS.get(name, name)


def dataset_order(names: set[str]) -> list[str]:
    """The paper's datasets in its order, then the others by name."""
    return [d for d in _PAPER_DATASET_ORDER if d in names] + sorted(names - set(_PAPER_DATASET_ORDER))


def number(x: float | None, digits: int = 4, sign: bool = False) -> str:
    """A value for Markdown: fixed digits (optionally signed), "–" for a missing or NaN one."""
    if x is None or math.isnan(x):
        return "–"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def csv_number(x: Any) -> str:
    """A value for CSV at full precision (`repr`), blank for a missing or NaN one."""
    if x is None:
        return ""
    x = float(x)
    return "" if math.isnan(x) else repr(x)


def one_line(text: str | None, limit: int = 300) -> str:
    """Text for a Markdown table cell: colours stripped, on one line, `|` escaped, cut at `limit` characters."""
    text = " ".join(_ANSI.sub("", text or "").split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"
