"""The report page around its sections (report.md: header, tables, claims, hyperparameters, notes, failed and
incomplete runs, plots) and runs.csv, one line per run directory."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from cfrec.report.collect import Run
from cfrec.report.formatting import csv_number, dataset_label, one_line
from cfrec.report.groups import Group
from cfrec.report.paper import METRICS
from cfrec.report.rows import row_label
from cfrec.report.tables import Section, section_markdown


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
    notes = [f"- {dataset_label(g.dataset)} / {row_label(g.row)}: {n}" for g in _groups_of(sections) for n in g.notes]
    notes += [f"- `{r.path}`: {n}" for r in runs for n in r.notes]
    if notes:
        parts += ["## Notes", "", *notes, ""]
    if failed:
        parts += ["## Failed runs", "", "(error and traceback: each run's metrics.json)", "",
                  "| Dataset | Model | Seed | Status | Error | Run dir |", "|---|---|---|---|---|---|"]
        for r in failed:
            parts.append(f"| {dataset_label(r.dataset)} | {r.label} | {r.seed} | {r.status} | {one_line(r.error)} "
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
               "seed": r.seed, "val_ndcg@100": csv_number((r.metrics.get("val") or {}).get("ndcg@100")),
               "best_epoch": r.metrics.get("best_epoch", ""), "epochs": r.metrics.get("epochs", ""),
               "train_seconds": r.metrics.get("train_seconds", ""), "error": one_line(r.error, 1000)}
        for m in METRICS:
            rec[m] = csv_number(test.get(m))
            rec[f"{m}_se"] = csv_number(test.get(f"{m}_se"))
        writer.writerow(rec)
    return buf.getvalue()
