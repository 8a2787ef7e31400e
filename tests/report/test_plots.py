"""The validation-history plot counts epochs from 1, as the console does, and marks the tested epoch there."""

from __future__ import annotations

from pathlib import Path

from cfrec.report import plots
from cfrec.report.collect import Run


def test_history_plot_counts_epochs_from_one(tmp_path: Path, monkeypatch):
    history = [{"epoch": e, "ndcg@100": 0.3 + 0.01 * e} for e in range(3)]  # metrics.json's 0-based indices
    run = Run(tmp_path, "ok", "ml-20m", "mult_vae", 1, {"history": history, "best_epoch": 2})
    drawn = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, ax, path, **kw: drawn.append(ax) or path)
    plots.plot_histories([run], tmp_path)
    curve, dot = drawn[0].get_lines()
    assert list(curve.get_xdata()) == [1, 2, 3]
    assert list(dot.get_xdata()) == [3] and list(dot.get_ydata()) == [0.32]  # the tested epoch, the third
