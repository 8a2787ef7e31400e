"""PNG figures from the runs' metrics.json: validation NDCG@100 per epoch (from `history`, one line per run,
one colour per model, a dot at the epoch that was tested; epochs counted from 1, as the console counts them) and the
β-search curves (from `beta_search`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from cfrec.report.collect import Run
from cfrec.report.formatting import METRIC_LABELS, dataset_label, dataset_order
from cfrec.report.rows import row_order


def slug(text: str) -> str:
    """`text` as a file-name part: anything but letters, digits and `-_.` becomes `_`."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def save_figure(fig: Figure, ax: Axes, path: Path, **legend: Any) -> Path:
    """Finish a figure the report's way (light grid, legend with `legend`'s options, tight layout), write it to
    `path` at 120 dpi and close it."""
    ax.grid(alpha=0.3)
    ax.legend(**legend)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_histories(runs: list[Run], out: Path, metric: str = "ndcg@100") -> list[Path]:
    """`val_<metric>_<dataset>.png` for every dataset with a run that logged per-epoch validation."""
    written = []
    with_history = [r for r in runs if r.ok and r.metrics.get("history")]
    for dataset in dataset_order({r.dataset for r in with_history}):
        runs_here = [r for r in with_history if r.dataset == dataset]
        rows = sorted({r.row for r in runs_here}, key=row_order)
        fig, ax = plt.subplots(figsize=(7, 4.5))
        colours = plt.get_cmap("tab10")
        for i, row in enumerate(rows):
            colour, style = colours(i % 10), ("-", "--", ":")[(i // 10) % 3]
            for j, run in enumerate(sorted((r for r in runs_here if r.row == row), key=lambda r: r.seed or 0)):
                points = [(h["epoch"] + 1, h[metric]) for h in run.metrics["history"] if metric in h and "epoch" in h]
                if not points:
                    continue
                xs, ys = zip(*points)
                ax.plot(xs, ys, color=colour, ls=style, alpha=0.85, lw=1.2, label=run.label if j == 0 else None)
                best = run.metrics.get("best_epoch")
                best = best + 1 if best is not None else None
                if best in xs:
                    ax.plot([best], [ys[xs.index(best)]], "o", color=colour, ms=4)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(f"validation {METRIC_LABELS.get(metric, metric)}")
        ax.set_title(f"Validation {METRIC_LABELS.get(metric, metric)} per epoch: {dataset_label(dataset)} "
                     "(dot = tested epoch)")
        written.append(save_figure(fig, ax, out / f"val_{slug(metric)}_{slug(dataset)}.png", fontsize=8, ncol=2))
    return written


def plot_beta_search(runs: list[Run], out: Path) -> list[Path]:
    """`beta_search_<dataset>.png`: validation NDCG@100 against β for every run with a β search."""
    written = []
    searched = [r for r in runs if r.ok and isinstance(r.metrics.get("beta_search"), dict)]
    for dataset in dataset_order({r.dataset for r in searched}):
        fig, ax = plt.subplots(figsize=(6, 4))
        for run in sorted((r for r in searched if r.dataset == dataset), key=lambda r: (r.row, r.seed or 0)):
            curve = run.metrics["beta_search"]
            betas, ndcgs = curve.get("beta") or [], curve.get("ndcg@100") or []
            if not betas:
                continue
            label = f"{run.label}, seed {run.seed}: best β = {curve.get('best_beta')}"
            line, = ax.plot(betas, ndcgs, lw=1.2, label=label)
            if curve.get("best_beta") is not None:
                ax.axvline(float(curve["best_beta"]), color=line.get_color(), ls="--", lw=0.8)
        ax.set_xlabel("β at the end of the epoch")
        ax.set_ylabel("validation NDCG@100")
        ax.set_title(f"β search: {dataset_label(dataset)}")
        written.append(save_figure(fig, ax, out / f"beta_search_{slug(dataset)}.png", fontsize=8))
    return written
