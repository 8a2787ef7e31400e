"""Results report over Hydra sweeps: `python -m cfrec.report <sweep dir> [...] [--out DIR]`.

rows.py reads the rows (conf/row/<name>.yaml: label, tables) and names a run's row from its choices;
collect.py finds the runs (metrics.json, or `.hydra/` without one) and labels them by (dataset, row);
groups.py pools each (dataset, row)'s runs over seeds (mean ± SE); paper.py reads the published numbers (paper.csv);
tables.py lays the groups out as the paper's Tables 2 and 3 beside them; document.py writes report.md around the
sections and runs.csv; formatting.py holds how numbers, labels and datasets are written;
claims.py checks the paper's §4 claims (conf/claims.yaml, read by claimset.py) by the seed-aware tests of paired.py
and stats.py;
tuning.py picks a row's setting on validation users; hparams.py lists each row's hyperparameters, epochs and fit
time; beyond.py the beyond-accuracy figures; plots.py draws the validation curves and β searches.
"""

from cfrec.report.claims import check_claims, claims
from cfrec.report.collect import Run, collect
from cfrec.report.document import render_markdown
from cfrec.report.groups import aggregate
from cfrec.report.paper import load_paper
from cfrec.report.rows import derive_row, row_label
from cfrec.report.tables import build_sections

__all__ = ["Run", "aggregate", "build_sections", "check_claims", "claims", "collect", "derive_row", "load_paper",
           "render_markdown", "report", "row_label"]


def report(*args, **kwargs):
    """`cfrec.report.__main__.report` (imported lazily: it pulls in matplotlib)."""
    from cfrec.report.__main__ import report as _report

    return _report(*args, **kwargs)
