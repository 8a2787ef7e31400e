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


def base_dataset(name: str) -> str:
    """The dataset name of a report dataset: `ml-20m` for `ml-20m (all ratings)`, one of several splits of
    ML-20M (cfrec/report/splits.py), and for `ml-20m`."""
    return name.split(" (", 1)[0] if name.endswith(")") else name


def dataset_label(name: str) -> str:
    """The paper's name of a dataset (ML-20M), else the preset's name; a split's description is kept
    (`ML-20M (all ratings)`)."""
    base = base_dataset(name)
    return DATASET_LABELS.get(base, base) + name[len(base):]


def dataset_order(names: set[str]) -> list[str]:
    """The paper's datasets in its order, then the others by name (a dataset's splits together, by name)."""
    rank = {d: i for i, d in enumerate(_PAPER_DATASET_ORDER)}
    return sorted(names, key=lambda n: (rank.get(base_dataset(n), len(rank)), base_dataset(n), n))


def number(x: float | None, digits: int = 4, sign: bool = False) -> str:
    """A value for Markdown: fixed digits (optionally signed), "–" for a missing or NaN one."""
    if x is None or math.isnan(x):
        return "–"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def se_number(se: float | None, digits: int = 4) -> str:
    """A standard error for Markdown: `digits` decimals, or two significant digits where those would round it
    to zero (`0.000012`, not `0.0000`, which would read as identical seeds); `0` only when it is 0."""
    if se is None or math.isnan(se) or se == 0 or abs(se) >= 0.5 * 10**-digits:
        return "0" if se == 0 else number(se, digits)
    return number(se, 1 - math.floor(math.log10(abs(se))))


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
