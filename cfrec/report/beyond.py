"""The section "## Beyond accuracy": coverage, Gini index and popularity of each row's top 100 (metrics.json's
`test` keys `coverage@100`, `gini@100`, `popularity@100`), and NDCG@100 by quintile of the test users'
fold-in activity (`by_activity.test`, Liang et al.'s Figure 3) as a table and a plot per dataset.

Values are the mean over a group's runs ± the standard error across seeds (one run: no ±, and for the
quintiles its per-user standard error, marked †). Runs made before these figures existed show "–".
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from pathlib import Path
from typing import Any

from cfrec.beyond_accuracy import BEYOND_KEYS as BEYOND
from cfrec.report.formatting import csv_number, dataset_label, dataset_order, number
from cfrec.report.groups import Group
from cfrec.report.rows import row_order

BEYOND_LABELS = {"coverage@100": "Coverage@100", "gini@100": "Gini@100", "popularity@100": "Popularity@100"}


def _mean_se(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return math.nan, math.nan
    if len(values) == 1:
        return values[0], math.nan
    return statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))


def beyond_value(group: Group, metric: str) -> tuple[float, float]:
    """(mean, SE across seeds) of a beyond-accuracy figure of the group's runs (NaN where none has it)."""
    return _mean_se([(r.metrics.get(group.split) or {}).get(metric, math.nan) for r in group.runs])


def quintiles(group: Group) -> list[dict[str, Any]]:
    """Per activity quintile: its activity range and users, NDCG@100 mean and SE (across seeds; one run:
    its per-user SE, `per_user_se` True). Empty when no run of the group has `by_activity`."""
    tables = [t for r in group.runs if (t := (r.metrics.get("by_activity") or {}).get(group.split))]
    if not tables:
        return []
    out = []
    for i, first in enumerate(tables[0]):
        values = [t[i]["ndcg@100"] for t in tables if i < len(t)]
        mean, se = _mean_se(values)
        single = len(values) == 1
        out.append({"quintile": first["quintile"], "activity_min": first["activity_min"],
                    "activity_max": first["activity_max"], "n_users": first["n_users"], "ndcg@100": mean,
                    "ndcg@100_se": float(first["ndcg@100_se"]) if single else se, "per_user_se": single})
    return out


def _cell(mean: float, se: float, mark: str = "") -> str:
    if math.isnan(mean):
        return "–"
    return f"{number(mean)}{mark}" if math.isnan(se) else f"{number(mean)} ± {number(se)}{mark}"


def by_dataset(groups: dict[tuple[str, str], Group]) -> list[tuple[str, list[Group]]]:
    """Each dataset's groups that ran, in the report's row order."""
    datasets = dataset_order({d for d, _ in groups})
    return [(d, [groups[k] for k in sorted((k for k in groups if k[0] == d and groups[k].runs),
                                           key=lambda k: row_order(k[1]))]) for d in datasets]


def beyond_tables(dataset: str, rows: list[Group]) -> str:
    """One dataset's beyond-accuracy table and activity-quintile table ("" when its runs have neither)."""
    if not any(not math.isnan(beyond_value(g, m)[0]) for g in rows for m in BEYOND) and \
            not any(quintiles(g) for g in rows):
        return ""
    parts = ["| Model | Runs | " + " | ".join(BEYOND_LABELS[m] for m in BEYOND) + " |", "|---|---|" + "---|" * 3]
    for g in rows:
        parts.append(f"| {g.runs[0].label} | {g.n} | " + " | ".join(_cell(*beyond_value(g, m)) for m in BEYOND) + " |")
    with_q = [(g, q) for g in rows if (q := quintiles(g))]
    if with_q:
        head = [f"Q{q['quintile']} ({q['activity_min']}–{q['activity_max']} items, {q['n_users']} users)"
                for q in with_q[0][1]]
        parts += ["", f"NDCG@100 by fold-in activity, {dataset_label(dataset)}:", "",
                  "| Model | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
        for g, q in with_q:
            cells = [_cell(x["ndcg@100"], x["ndcg@100_se"], "†" if x["per_user_se"] else "") for x in q]
            parts.append(f"| {g.runs[0].label} | " + " | ".join(cells) + " |")
    return "\n".join(parts)


def beyond_markdown(groups: dict[tuple[str, str], Group], plots: list[Path] | None = None) -> str:
    """The section's Markdown: per dataset, the beyond-accuracy table and the activity-quintile table."""
    parts = ["## Beyond accuracy", "",
             "Coverage@100: distinct items in the test users' top 100 ÷ catalogue size; Gini@100: Gini index of "
             "how often each item is recommended (0 = evenly, → 1 = on few items); Popularity@100: mean share of "
             "training users holding a recommended item. By activity: test NDCG@100 by quintile of the test users' "
             "fold-in item count (Q1 = least active; Liang et al. 2018, Figure 3). Mean ± SE across seeds; one run: "
             "no ± (quintiles: its per-user SE, †).", ""]
    shown = False
    for dataset, rows in by_dataset(groups):
        tables = beyond_tables(dataset, rows)
        if tables:
            shown = True
            parts += [f"### {dataset_label(dataset)}", "", tables, ""]
    for path in plots or []:
        parts.append(f"- [{path.name}]({path.name})")
    return "\n".join(parts).rstrip() if shown else ""


def beyond_csv(groups: dict[tuple[str, str], Group]) -> str:
    """One CSV line per (dataset, row): the beyond-accuracy figures and NDCG@100 per activity quintile."""
    buf = io.StringIO()
    fields = ["dataset", "row", "model", "n_runs", *[f for m in BEYOND for f in (m, f"{m}_se")],
              *[f"q{i}_{f}" for i in range(1, 6) for f in ("activity", "ndcg@100", "ndcg@100_se")]]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for dataset, rows in by_dataset(groups):
        for g in rows:
            rec: dict[str, Any] = {"dataset": dataset, "row": g.row, "model": g.runs[0].label, "n_runs": g.n}
            for m in BEYOND:
                mean, se = beyond_value(g, m)
                rec.update({m: csv_number(mean), f"{m}_se": csv_number(se)})
            for q in quintiles(g)[:5]:
                i = q["quintile"]
                rec.update({f"q{i}_activity": f"{q['activity_min']}-{q['activity_max']}",
                            f"q{i}_ndcg@100": csv_number(q["ndcg@100"]),
                            f"q{i}_ndcg@100_se": csv_number(q["ndcg@100_se"])})
            writer.writerow(rec)
    return buf.getvalue()


def plot_activity(groups: dict[tuple[str, str], Group], out: Path) -> list[Path]:
    """`activity_ndcg_<dataset>.png`: NDCG@100 against fold-in activity quintile, one line (± SE) per row."""
    import matplotlib.pyplot as plt

    from cfrec.report.plots import save_figure, slug  # here, not at import: it loads matplotlib

    written = []
    for dataset, rows in by_dataset(groups):
        with_q = [(g, q) for g in rows if (q := quintiles(g))]
        if not with_q:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        colours = plt.get_cmap("tab10")
        for i, (g, q) in enumerate(with_q):
            xs = [x["quintile"] for x in q]
            ys = [x["ndcg@100"] for x in q]
            errs = [0.0 if math.isnan(x["ndcg@100_se"]) else x["ndcg@100_se"] for x in q]
            ax.errorbar(xs, ys, yerr=errs, color=colours(i % 10), ls=("-", "--", ":")[(i // 10) % 3], marker="o",
                        ms=3, lw=1.2, capsize=2, label=g.runs[0].label)
        first = with_q[0][1]
        ax.set_xticks([x["quintile"] for x in first])
        ax.set_xticklabels([f"Q{x['quintile']}\n{x['activity_min']}–{x['activity_max']}" for x in first])
        ax.set_xlabel("quintile of the test users' fold-in items (Q1 = least active)")
        ax.set_ylabel("test NDCG@100")
        ax.set_title(f"NDCG@100 by user activity: {dataset_label(dataset)}")
        written.append(save_figure(fig, ax, out / f"activity_ndcg_100_{slug(dataset)}.png", fontsize=7, ncol=2))
    return written


def add_beyond_accuracy(markdown: str, groups: dict[tuple[str, str], Group], out: Path, plots: bool = True) -> str:
    """Write beyond.csv (and the activity plots) to `out`; returns `markdown` with the section appended."""
    pngs = plot_activity(groups, out) if plots else []
    (out / "beyond.csv").write_text(beyond_csv(groups), encoding="utf-8")
    section = beyond_markdown(groups, pngs)
    if not section:
        return markdown
    return markdown.rstrip("\n") + "\n\n" + section
