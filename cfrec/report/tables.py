"""The paper's layout: one table per (paper table, dataset), rows = models, columns = Recall@20, Recall@50,
NDCG@100, each as ours (mean ± SE), the published value and the difference ours − paper.

Ours = the mean of the runs' test metrics over seeds; ± is the standard error across seeds
(sample std / √n) when a row has ≥ 2 seeds, and the per-user standard error of the single run's test
users (from metrics.json) when it has one (marked †). The published numbers come from `paper.csv`
(Tables 2 and 3 of the paper, plus the extended baselines' own papers). For a dataset the paper does not
report (synthetic, ml-1m-implicit, citeulike-a, ...) the paper columns show a reference dataset's
numbers (ML-20M by default, `--reference-dataset none` to leave them empty), labelled as such.
"""

from __future__ import annotations

import csv
import io
import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfrec.report.collect import METRICS, ROW_LABELS, Run, row_label

PAPER_CSV = Path(__file__).with_name("paper.csv")
TABLE_TITLES = {"table2": "Table 2", "table3": "Table 3", "extended": "Extended baselines"}
PAPER_TABLES = ("table2", "table3")  # the tables of the ICTIR'22 paper, in its order
DATASET_LABELS = {"ml-20m": "ML-20M", "netflix": "Netflix", "msd": "MSD"}
METRIC_LABELS = {"recall@20": "Recall@20", "recall@50": "Recall@50", "ndcg@100": "NDCG@100"}
_PAPER_DATASET_ORDER = ("ml-20m", "netflix", "msd")


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


def dataset_label(name: str) -> str:
    return DATASET_LABELS.get(name, name)


@dataclass
class Group:
    """The successful runs of one (dataset, row), one per seed, and their summary."""

    dataset: str
    row: str
    runs: list[Run]
    split: str = "test"
    failed: int = 0
    incomplete: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.runs)

    @property
    def seeds(self) -> list[int | None]:
        return [r.seed for r in self.runs]

    @property
    def se_kind(self) -> str:
        """`seeds` (SE across seeds), `users` (one run: its per-user SE) or `none` (no successful run)."""
        return "seeds" if self.n >= 2 else "users" if self.n == 1 else "none"

    def value(self, metric: str) -> tuple[float, float]:
        """(mean, standard error) of `metric` on the group's split; NaNs when nothing ran."""
        if self.n == 0:
            return math.nan, math.nan
        values = [v for r in self.runs if not math.isnan(v := _split_value(r, self.split, metric))]
        if not values:
            return math.nan, math.nan
        if len(values) == 1:
            se = (self.runs[0].metrics.get(self.split) or {}).get(f"{metric}_se") if self.n == 1 else None
            return values[0], float(se) if se is not None else math.nan
        return statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))


def _split_value(run: Run, split: str, metric: str) -> float:
    value = (run.metrics.get(split) or {}).get(metric)
    return float(value) if value is not None else math.nan


def aggregate(runs: list[Run], split: str = "test") -> dict[tuple[str, str], Group]:
    """Group runs by (dataset, row); a seed run twice keeps its latest metrics.json (noted)."""
    groups: dict[tuple[str, str], Group] = {}
    for run in runs:
        group = groups.setdefault((run.dataset, run.row), Group(run.dataset, run.row, [], split))
        if run.status == "incomplete":
            group.incomplete += 1
            continue
        if not run.ok:
            group.failed += 1
            continue
        same = [r for r in group.runs if run.seed is not None and r.seed == run.seed]
        if same:
            keep, drop = (run, same[0]) if run.mtime >= same[0].mtime else (same[0], run)
            group.notes.append(f"seed {run.seed} ran twice; using {keep.path} (not {drop.path})")
            if keep is run:
                group.runs[group.runs.index(same[0])] = run
            continue
        group.runs.append(run)
    for group in groups.values():
        group.runs.sort(key=lambda r: (r.seed is None, r.seed if r.seed is not None else 0, str(r.path)))
    return groups


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


def _dataset_order(names: set[str]) -> list[str]:
    return [d for d in _PAPER_DATASET_ORDER if d in names] + sorted(names - set(_PAPER_DATASET_ORDER))


def _row_order(row: str) -> tuple[int, str]:
    keys = list(ROW_LABELS)
    return (keys.index(row), row) if row in keys else (len(keys), row)


def build_sections(groups: dict[tuple[str, str], Group], paper: list[PaperRow],
                   reference_dataset: str | None = "ml-20m",
                   tables: list[str] | None = None) -> list[Section]:
    """The paper's tables holding any row that ran (all of that table's rows, in its order), then the
    models outside them; one section per dataset."""
    by_table: dict[str, list[str]] = {}
    for p in paper:
        if p.table in PAPER_TABLES and p.model not in by_table.setdefault(p.table, []):
            by_table[p.table].append(p.model)
    ran_labels = {g.runs[0].label if g.runs else _label(g.row) for g in groups.values()}
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
    sections: list[Section] = []
    datasets = _dataset_order({d for d, _ in groups})
    label_of = {key: _label(key[1]) for key in groups}
    for table in tables:
        for dataset in datasets:
            ref = dataset if dataset in paper_datasets else reference_dataset
            lines = []
            for label in by_table.get(table, []):
                keys = [k for k in groups if k[0] == dataset and label_of[k] == label]
                group = groups[keys[0]] if keys else None
                values, source = _published(paper, ref, label, table)
                lines.append(Line(label, keys[0][1] if keys else None, group, values, source))
            sections.append(Section(table, dataset, ref, lines))
    shown = {lab for t in tables for lab in by_table.get(t, [])}
    for dataset in datasets:
        ref = dataset if dataset in paper_datasets else reference_dataset
        rows = sorted((k[1] for k in groups if k[0] == dataset and label_of[k] not in shown), key=_row_order)
        if rows:
            lines = []
            for row in rows:
                values, source = _published(paper, ref, _label(row), "extended")
                lines.append(Line(_label(row), row, groups[(dataset, row)], values, source))
            sections.append(Section("other", dataset, ref, lines))
    return sections


def _label(row: str) -> str:
    return row_label(row)


def _published(paper: list[PaperRow], dataset: str | None, label: str, table: str) -> tuple[dict[str, float], str]:
    if dataset is None:
        return {}, ""
    hits = [p for p in paper if p.dataset == dataset and p.model == label]
    hits.sort(key=lambda p: p.table != table)
    return (dict(hits[0].values), hits[0].source) if hits else ({}, "")


# ---------------------------------------------------------------------------------------------- rendering

def _fmt(x: float, digits: int = 4, sign: bool = False) -> str:
    if x is None or math.isnan(x):
        return "–"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _runs_cell(g: Group | None) -> str:
    if g is None:
        return "not run"
    text = [f"{g.n} seeds" if g.n >= 2 else "1 run†"] if g.n else []
    text += [f"{g.failed} failed"] if g.failed else []
    text += [f"{g.incomplete} incomplete"] if g.incomplete else []
    return ", ".join(text) or "not run"


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
        cells = [line.label, _runs_cell(line.group)]
        for m in METRICS:
            mean, se, published, diff = line.cells(m)
            ours = "–" if math.isnan(mean) else f"{_fmt(mean)} ± {_fmt(se)}"
            if not math.isnan(mean) and mean == best[m]:
                ours = f"**{ours}**"
            cells.append(ours)
            if paper_cols:
                cells += [_fmt(published, 3), _fmt(diff, 4, sign=True)]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def render_markdown(sections: list[Section], runs: list[Run], roots: list[str], split: str = "test",
                    plots: list[Path] | None = None, claims: str = "", hyperparameters: str = "") -> str:
    """The whole report: tables, the claims section (`claims.claims_markdown`), the hyperparameters and time
    section (`hparams.hyperparameters_markdown`), notes, failed and incomplete runs, plots."""
    ok = sum(r.ok for r in runs)
    failed = [r for r in runs if r.status not in ("ok", "incomplete")]
    incomplete = [r for r in runs if r.status == "incomplete"]
    parts = ["# cfrec results", "",
             f"Sweeps: {', '.join(f'`{r}`' for r in roots)}  ",
             f"Runs: {len(runs)} ({ok} ok, {len(failed)} failed, {len(incomplete)} incomplete). "
             f"Metrics on the **{split}** users.", "",
             "Ours = mean over seeds ± standard error across seeds (sample std / √n); † = a single run, "
             "whose ± is the per-user standard error of its users. *paper* = the published value (ICTIR'22 "
             "Tables 2–3; other models: their own papers, see `cfrec/report/paper.csv`), Δ = ours − paper. "
             "Bold: our best.", ""]
    for section in sections:
        parts += [section_markdown(section), ""]
    for extra in (claims, hyperparameters):
        if extra:
            parts += [extra, ""]
    notes = [f"- {dataset_label(g.dataset)} / {_label(g.row)}: {n}" for g in _groups_of(sections) for n in g.notes]
    notes += [f"- `{r.path}`: {n}" for r in runs for n in r.notes]
    if notes:
        parts += ["## Notes", "", *notes, ""]
    if failed:
        parts += ["## Failed runs", "", "(error and traceback: each run's metrics.json)", "",
                  "| Dataset | Model | Seed | Status | Error | Run dir |", "|---|---|---|---|---|---|"]
        for r in failed:
            parts.append(f"| {dataset_label(r.dataset)} | {r.label} | {r.seed} | {r.status} | {_one_line(r.error)} "
                         f"| `{r.path}` |")
        parts.append("")
    if incomplete:
        parts += ["## Incomplete runs (no metrics.json)", ""]
        parts += [f"- {dataset_label(r.dataset)} / {r.label} / seed {r.seed}: `{r.path}`" for r in incomplete]
        parts.append("")
    if plots:
        parts += ["## Plots", "", *[f"- [{p.name}]({p.name})" for p in plots], ""]
    return "\n".join(parts)


def _groups_of(sections: list[Section]) -> list[Group]:
    seen: dict[int, Group] = {}
    for s in sections:
        for line in s.lines:
            if line.group is not None:
                seen.setdefault(id(line.group), line.group)
    return list(seen.values())


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _one_line(text: str | None, limit: int = 300) -> str:
    text = " ".join(_ANSI.sub("", text or "").split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
                rec.update({m: _csv(mean), f"{m}_se": _csv(se), f"{m}_paper": _csv(published), f"{m}_diff": _csv(diff)})
            writer.writerow(rec)
    return buf.getvalue()


def runs_csv(runs: list[Run]) -> str:
    """One CSV line per run directory (ok, failed or incomplete)."""
    buf = io.StringIO()
    fields = ["path", "status", "dataset", "row", "model", "seed", *METRICS, *(f"{m}_se" for m in METRICS),
              "val_ndcg@100", "best_epoch", "epochs", "train_seconds", "error"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in runs:
        test = r.metrics.get("test") or {}
        rec = {"path": str(r.path), "status": r.status, "dataset": r.dataset, "row": r.row, "model": r.label,
               "seed": r.seed, "val_ndcg@100": _csv((r.metrics.get("val") or {}).get("ndcg@100")),
               "best_epoch": r.metrics.get("best_epoch", ""), "epochs": r.metrics.get("epochs", ""),
               "train_seconds": r.metrics.get("train_seconds", ""), "error": _one_line(r.error, 1000)}
        for m in METRICS:
            rec[m] = _csv(test.get(m))
            rec[f"{m}_se"] = _csv(test.get(f"{m}_se"))
        writer.writerow(rec)
    return buf.getvalue()


def _csv(x: Any) -> str:
    if x is None:
        return ""
    x = float(x)
    return "" if math.isnan(x) else repr(x)
