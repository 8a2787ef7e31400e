"""Results report over Hydra sweeps: `python -m cfrec.report <sweep dir> [...] [--out DIR]`.

collect.py finds the runs (metrics.json, or `.hydra/` without one) and labels them by (dataset, row);
tables.py lays them out as the paper's Tables 2 and 3 beside the published numbers (paper.csv);
claims.py checks the paper's §4 claims (each model against Mult-VAE) on the runs;
hparams.py lists each row's hyperparameters (from the composed configs), epochs and fit time;
plots.py draws the validation curves and β searches; loggers.py builds the W&B logger of `logger=default`.
"""

from cfrec.report.claims import CLAIMS, check_claims
from cfrec.report.collect import ROW_LABELS, Run, collect, derive_row, row_label
from cfrec.report.tables import aggregate, build_sections, load_paper, render_markdown

__all__ = ["CLAIMS", "ROW_LABELS", "Run", "aggregate", "build_sections", "check_claims", "collect", "derive_row",
           "load_paper", "render_markdown", "report", "row_label"]


def report(*args, **kwargs):
    """`cfrec.report.__main__.report` (imported lazily: it pulls in matplotlib)."""
    from cfrec.report.__main__ import report as _report

    return _report(*args, **kwargs)
