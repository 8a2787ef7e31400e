"""The published numbers: `paper.csv` (Tables 2 and 3 of the ICTIR'22 paper, plus the extended baselines' own
papers), one line per (table, dataset, model) with the three metrics the paper reports."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

PAPER_CSV = Path(__file__).with_name("paper.csv")
METRICS = ("recall@20", "recall@50", "ndcg@100")


@dataclass(frozen=True)
class PaperRow:
    """One published row: a model's three metrics on one dataset (NaN where the paper prints "-")."""

    table: str
    dataset: str
    model: str
    values: dict[str, float]
    source: str


def _number(text: str) -> float:
    text = text.strip()
    return math.nan if text in ("", "-", "–") else float(text)


def load_paper(path: str | Path = PAPER_CSV) -> list[PaperRow]:
    """The published numbers (`paper.csv`: table, dataset, model, recall@20, recall@50, ndcg@100, source)."""
    with open(path, newline="", encoding="utf-8") as f:
        return [PaperRow(r["table"], r["dataset"], r["model"], {m: _number(r[m]) for m in METRICS}, r["source"])
                for r in csv.DictReader(f)]
