"""Pieces of the report, written as files under `OUT/fragments/` so that hand-written pages include them
(`python -m cfrec.report.include`) instead of copying numbers: the verdicts of every dataset at a glance and, per
dataset, the claims table, the table of how its verdicts move with the thresholds, each claim row's seeds (test
NDCG@100, epochs run, best epoch), the controlled runs' comparisons and the beyond-accuracy tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cfrec.io import atomic_write_bytes
from cfrec.report.beyond import beyond_tables, by_dataset
from cfrec.report.claims import Check, claims_table, controlled_table, sensitivity_table, summary_table
from cfrec.report.claimset import ClaimSet, load_claims
from cfrec.report.formatting import METRIC_LABELS, number
from cfrec.report.groups import Group
from cfrec.report.paired import Comparison
from cfrec.report.rows import REFERENCE, row_label


def seeds_table(groups: dict[tuple[str, str], Group], dataset: str, claims: ClaimSet | None = None) -> str:
    """Mult-VAE and each row of a claim (default: conf/claims.yaml) on `dataset`: every seed's test value of the
    claims' metric (NDCG@100), epochs run and best epoch."""
    claims = claims if claims is not None else load_claims()
    metric = claims.metric
    out = [f"| Row | Seeds: test {METRIC_LABELS.get(metric, metric)} | Epochs run (best epoch, counted from 1; cap: "
           "reached the cap without stopping early) |", "|---|---|---|"]
    for row in dict.fromkeys([REFERENCE, *(r for c in claims.claims for r in (c.row, c.against))]):
        group = groups.get((dataset, row))
        if group is None or not group.n:
            continue
        runs = sorted(group.runs, key=lambda r: (r.seed is None, r.seed or 0))
        values = ", ".join(f"{number(r.test(metric))} (s{r.seed})" for r in runs)
        epochs = ", ".join(f"{r.metrics['epochs']}{'' if r.metrics.get('stopped_early') else ' (cap)'} "
                           f"({r.metrics['best_epoch'] + 1})" if "epochs" in r.metrics else "–" for r in runs)
        out.append(f"| {row_label(row)} | {values} | {epochs} |")
    return "\n".join(out)


def write_fragments(out: Path, checks: list[Check], groups: dict[tuple[str, str], Group],
                    claims: ClaimSet | None = None, comparisons: Sequence[Comparison] = ()) -> list[Path]:
    """`claims.md` (every dataset) and `claims_<dataset>.md`, `sensitivity_<dataset>.md`, `seeds_<dataset>.md`,
    `variants_<dataset>.md` and `beyond_<dataset>.md` under `out/fragments/`, for each dataset that has them;
    returns the paths written."""
    claims = claims if claims is not None else load_claims()
    folder = out / "fragments"
    folder.mkdir(parents=True, exist_ok=True)
    pieces: dict[str, str] = {"claims.md": summary_table(checks)} if checks else {}
    for dataset in dict.fromkeys(c.dataset for c in checks):
        pieces[f"claims_{dataset}.md"] = claims_table([c for c in checks if c.dataset == dataset], claims)
        pieces[f"sensitivity_{dataset}.md"] = sensitivity_table(checks, claims, dataset=dataset)
        pieces[f"seeds_{dataset}.md"] = seeds_table(groups, dataset, claims)
    for dataset in dict.fromkeys(c.dataset for c in comparisons):
        if table := controlled_table(list(comparisons), claims.metric, dataset):
            pieces[f"variants_{dataset}.md"] = table
    for dataset, rows in by_dataset(groups):
        if tables := beyond_tables(dataset, rows):
            pieces[f"beyond_{dataset}.md"] = tables
    written = []
    for name, text in pieces.items():
        path = folder / name
        atomic_write_bytes(path, (text + "\n").encode())
        written.append(path)
    return written
