"""The paper's layout: one table per (paper table, dataset), rows = models, columns = Recall@20, Recall@50,
NDCG@100, each as ours (mean ± SE), the published value and the difference ours − paper.

Ours = a group's mean ± SE (`cfrec.report.groups`; a single run's per-user SE is marked †). The published
numbers come from `paper.csv` (`cfrec.report.paper`). For a dataset the paper does not report (synthetic,
ml-1m-implicit, citeulike-a, custom, ...) the paper columns are left out unless a reference dataset is asked for
(`--reference-dataset ml-20m`), whose numbers they then show, labelled "for reference only". One of several
splits of a paper dataset (`ml-20m (all ratings)`, cfrec/report/splits.py) shows the paper's numbers, labelled
the same way.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Any

from cfrec.report.formatting import (
    METRIC_LABELS,
    base_dataset,
    csv_number,
    dataset_label,
    dataset_order,
    number,
    se_number,
)
from cfrec.report.groups import Group, runs_cell
from cfrec.report.paper import METRICS, PaperRow
from cfrec.report.rows import row_label, row_order, table_rows

TABLE_TITLES = {"table2": "Table 2", "table3": "Table 3", "extended": "Extended baselines"}
PAPER_TABLES = ("table2", "table3")  # the tables of the ICTIR'22 paper, in its order


@dataclass
class Line:
    """One row of a rendered table: a model, our group (if it ran) and the published numbers (if any)."""

    label: str
    row: str | None
    group: Group | None
    paper: dict[str, float]
    source: str = ""

    def cells(self, metric: str) -> tuple[float, float, float, float]:
        """(ours, se, paper, ours − paper)."""
        mean, se = self.group.value(metric) if self.group else (math.nan, math.nan)
        published = self.paper.get(metric, math.nan)
        return mean, se, published, mean - published


@dataclass
class Section:
    """One rendered table: a paper table (or the other models) on one dataset."""

    table: str  # table2 / table3 / other
    dataset: str
    paper_dataset: str | None  # whose published numbers are shown (None: no paper columns)
    lines: list[Line]

    @property
    def title(self) -> str:
        name = TABLE_TITLES.get(self.table, "Other models")
        title = f"{name}: {dataset_label(self.dataset)}"
        if self.paper_dataset and self.paper_dataset != self.dataset:
            title += f" (published columns: {dataset_label(self.paper_dataset)}, for reference only)"
        elif not self.paper_dataset:
            title += " (no published numbers)"
        return title


def build_sections(groups: dict[tuple[str, str], Group], paper: list[PaperRow],
                   reference_dataset: str | None = None,
                   tables: list[str] | None = None) -> list[Section]:
    """The paper's tables holding any row that ran (all of that table's published rows in its order, then the rows
    that ran whose file tags them with it), then the models outside them; one section per dataset."""
    by_table: dict[str, list[str]] = {}
    for p in paper:
        if p.table in PAPER_TABLES and p.model not in by_table.setdefault(p.table, []):
            by_table[p.table].append(p.model)
    ran_labels = {g.runs[0].label if g.runs else row_label(g.row) for g in groups.values()}
    for table in PAPER_TABLES:  # a row of the user's own, tagged `tables: [table3]`, joins Table 3
        by_table[table] += [label for name in table_rows(table) if (label := row_label(name)) in ran_labels
                            and label not in by_table[table]]
    if tables is None:  # a table is shown when a row only it has ran; a shared row (Mult-VAE) picks the first
        tables = [t for t in PAPER_TABLES
                  if any(lab in by_table.get(t, []) and sum(lab in by_table.get(u, []) for u in PAPER_TABLES) == 1
                         for lab in ran_labels)]
        for lab in ran_labels:
            homes = [t for t in PAPER_TABLES if lab in by_table.get(t, [])]
            if homes and not any(t in tables for t in homes):
                tables.append(homes[0])
        tables = [t for t in PAPER_TABLES if t in tables]
    paper_datasets = {p.dataset for p in paper}
    published = {d: base_dataset(d) if base_dataset(d) in paper_datasets else reference_dataset
                 for d, _ in groups}
    sections: list[Section] = []
    datasets = dataset_order({d for d, _ in groups})
    label_of = {key: row_label(key[1]) for key in groups}
    for table in tables:
        for dataset in datasets:
            ref = published[dataset]
            lines = []
            for label in by_table.get(table, []):
                keys = [k for k in groups if k[0] == dataset and label_of[k] == label]
                group = groups[keys[0]] if keys else None
                values, source = _published(paper, ref, label, table)
                lines.append(Line(label, keys[0][1] if keys else None, group, values, source))
            sections.append(Section(table, dataset, ref, lines))
    shown = {lab for t in tables for lab in by_table.get(t, [])}
    for dataset in datasets:
        ref = published[dataset]
        rows = sorted((k[1] for k in groups if k[0] == dataset and label_of[k] not in shown), key=row_order)
        if rows:
            lines = []
            for row in rows:
                values, source = _published(paper, ref, row_label(row), "extended")
                lines.append(Line(row_label(row), row, groups[(dataset, row)], values, source))
            sections.append(Section("other", dataset, ref, lines))
    return sections


def _published(paper: list[PaperRow], dataset: str | None, label: str, table: str) -> tuple[dict[str, float], str]:
    if dataset is None:
        return {}, ""
    hits = [p for p in paper if p.dataset == dataset and p.model == label]
    hits.sort(key=lambda p: p.table != table)
    return (dict(hits[0].values), hits[0].source) if hits else ({}, "")


# ---------------------------------------------------------------------------------------------- rendering

def section_markdown(section: Section) -> str:
    """One Markdown table; our best value of each metric in bold."""
    paper_cols = section.paper_dataset is not None
    head = ["Model", "Runs"]
    for m in METRICS:
        head += [METRIC_LABELS[m]] + (["paper", "Δ"] if paper_cols else [])
    out = [f"### {section.title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    best = {m: max((ln.cells(m)[0] for ln in section.lines if not math.isnan(ln.cells(m)[0])), default=math.nan)
            for m in METRICS}
    for line in section.lines:
        cells = [line.label, runs_cell(line.group)]
        for m in METRICS:
            mean, se, published, diff = line.cells(m)
            ours = "–" if math.isnan(mean) else f"{number(mean)} ± {se_number(se)}"
            if not math.isnan(mean) and mean == best[m]:
                ours = f"**{ours}**"
            cells.append(ours)
            if paper_cols:
                cells += [number(published, 3), number(diff, 4, sign=True)]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def results_csv(sections: list[Section]) -> str:
    """One CSV line per (table, dataset, model): ours, SE, paper, difference for each metric."""
    buf = io.StringIO()
    fields = ["table", "dataset", "paper_dataset", "model", "row", "n_runs", "seeds", "se_kind", "failed", "incomplete"]
    for m in METRICS:
        fields += [m, f"{m}_se", f"{m}_paper", f"{m}_diff"]
    fields.append("paper_source")
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for s in sections:
        for line in s.lines:
            g = line.group
            rec: dict[str, Any] = {
                "table": s.table, "dataset": s.dataset, "paper_dataset": s.paper_dataset or "", "model": line.label,
                "row": line.row or "", "n_runs": g.n if g else 0,
                "seeds": " ".join(str(x) for x in g.seeds) if g else "",
                "se_kind": g.se_kind if g else "none", "failed": g.failed if g else 0,
                "incomplete": g.incomplete if g else 0, "paper_source": line.source}
            for m in METRICS:
                mean, se, published, diff = line.cells(m)
                rec.update({m: csv_number(mean), f"{m}_se": csv_number(se), f"{m}_paper": csv_number(published),
                            f"{m}_diff": csv_number(diff)})
            writer.writerow(rec)
    return buf.getvalue()
