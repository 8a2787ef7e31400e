"""The section "## Settings chosen on validation": a row's setting picked among its grid points on validation users.

A grid point is a run made with `tune=<keys>` (e.g. `row=vae_reg tune=model.l2 model.l2=0.001`), reported as its
own row `vae_reg[l2=0.001]`. For each row with grid points, the candidates are the row itself (its preset setting)
and its grid points; the one with the best validation NDCG@100 (at each run's best epoch, averaged over its seeds)
is chosen. Test users never enter the choice: the chosen row's test comparison with Mult-VAE is shown beside it,
from the same paired tests as comparisons.csv.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from dataclasses import asdict, dataclass

from cfrec.report.formatting import csv_number, dataset_label, dataset_order
from cfrec.report.groups import Group
from cfrec.report.paired import Comparison
from cfrec.report.paper import METRICS

METRIC = "ndcg@100"


@dataclass(frozen=True)
class Candidate:
    """One setting of a row on one dataset: its validation NDCG@100 and whether it was chosen."""

    dataset: str
    row: str
    candidate: str
    n_seeds: int
    val_ndcg: float
    chosen: bool
    diagnostics: str = ""  # what a model logs beside its validation metrics (SIVAE's psi_spread), seed means


def _val(group: Group) -> float:
    values = [float(v) for r in group.runs if (v := (r.metrics.get("val") or {}).get(METRIC)) is not None]
    return statistics.fmean(values) if values else math.nan


def _diagnostics(group: Group) -> str:
    """`psi_spread=0.0846`: every other number a run's validation block holds, averaged over its seeds."""
    vals = [r.metrics.get("val") or {} for r in group.runs]
    keys = sorted({k for v in vals for k in v if k != "n_users" and not k.endswith("_se") and k not in METRICS})
    return ",".join(f"{k}={statistics.fmean(float(v[k]) for v in vals if k in v):.4g}" for k in keys)


def choose_settings(groups: dict[tuple[str, str], Group]) -> list[Candidate]:
    """For every (dataset, row) with grid points: each candidate, the best on validation marked chosen."""
    bases = sorted({(d, row.partition("[")[0]) for (d, row), g in groups.items() if any(r.grid for r in g.runs)})
    out: list[Candidate] = []
    for dataset, base in bases:
        candidates = {row: g for (d, row), g in groups.items()
                      if d == dataset and g.n and (row == base or (row.startswith(base + "[")
                                                                   and all(r.grid for r in g.runs)))}
        values = {row: _val(g) for row, g in candidates.items()}
        finite = {row: v for row, v in values.items() if not math.isnan(v)}
        best = max(finite, key=finite.__getitem__) if finite else None
        out.extend(Candidate(dataset, base, row, candidates[row].n, values[row], row == best,
                             _diagnostics(candidates[row]))
                   for row in sorted(candidates, key=lambda r: (r != base, r)))
    return out


def tuning_markdown(candidates: list[Candidate], comparisons: list[Comparison]) -> str:
    """The section: per dataset and row, each setting's validation NDCG@100 and its test Δ against Mult-VAE."""
    if not candidates:
        return ""
    tests = {(c.dataset, c.row_a): c for c in comparisons if c.metric == METRIC}
    lines = ["## Settings chosen on validation", "",
             "Each row run over a grid of its own settings (`tune=...`) keeps the setting with the best validation "
             "NDCG@100 (best epoch, mean over seeds); test users do not enter the choice. Δ test is the paired "
             "difference from Mult-VAE on the test users (95 % CI, paired t-test p), as in comparisons.csv.", "",
             "| Dataset | Row | Setting | Seeds | Val NDCG@100 | Δ test NDCG@100 [95 % CI] | p (t) | Chosen "
             "| Diagnostics (val) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for dataset in dataset_order({c.dataset for c in candidates}):
        for c in (c for c in candidates if c.dataset == dataset):
            t = tests.get((c.dataset, c.candidate))
            delta = f"{t.diff:+.4f} [{t.ci_low:+.4f}, {t.ci_high:+.4f}]" if t else "—"
            setting = c.candidate[len(c.row):].strip("[]") or "preset"
            lines.append(f"| {dataset_label(dataset)} | {c.row} | {setting} | {c.n_seeds} | {c.val_ndcg:.4f} | "
                         f"{delta} | {f'{t.p_ttest:.2g}' if t else '—'} | {'✓' if c.chosen else ''} | "
                         f"{c.diagnostics.replace(',', ', ') or '—'} |")
    return "\n".join(lines)


def tuning_csv(candidates: list[Candidate]) -> str:
    """`tuning.csv`: one line per dataset, row and candidate setting."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(Candidate.__dataclass_fields__), lineterminator="\n")
    writer.writeheader()
    for c in candidates:
        writer.writerow({k: csv_number(v) if isinstance(v, float) else v for k, v in asdict(c).items()})
    return buf.getvalue()
