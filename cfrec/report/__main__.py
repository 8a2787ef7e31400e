"""`python -m cfrec.report <sweep dir> [<sweep dir> ...] [--out DIR]`: the paper's tables over finished sweeps.

Prints the Markdown report and writes, under --out (default: `<first sweep dir>/report`): report.md,
results.csv (one line per table × dataset × model), comparisons.csv (every row against Mult-VAE on the
same users: paired t-test and Wilcoxon per metric), claims.csv (one line per paper claim × dataset),
tuning.csv (each row's grid points and the setting chosen on validation users), hyperparameters.csv (one line
per dataset × model: settings, epochs, fit time), runs.csv (one line per run),
beyond.csv (coverage, Gini, popularity and NDCG@100 by activity quintile per dataset × model), the PNG plots,
and fragments/ (per dataset: the claims table, the claim rows' seeds and the beyond-accuracy tables, for
hand-written pages to include with `python -m cfrec.report.include`).
Exit status 0 even when runs failed (they are listed); 2 when no run was found.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cfrec.report.beyond import add_beyond_accuracy
from cfrec.report.claims import check_claims, claims_csv, claims_markdown
from cfrec.report.collect import collect
from cfrec.report.document import render_markdown, runs_csv
from cfrec.report.fragments import write_fragments
from cfrec.report.groups import aggregate
from cfrec.report.hparams import hyperparameters_csv, hyperparameters_markdown
from cfrec.report.paired import compare, comparisons_csv
from cfrec.report.paper import PAPER_CSV, load_paper
from cfrec.report.tables import build_sections, results_csv
from cfrec.report.tuning import choose_settings, tuning_csv, tuning_markdown


def report(roots: list[str | Path], out: str | Path | None = None, split: str = "test",
           reference_dataset: str | None = "ml-20m", tables: list[str] | None = None,
           paper_csv: str | Path = PAPER_CSV, plots: bool = True) -> str:
    """Build the report of the runs under `roots`, write its files to `out`, return the Markdown."""
    roots = [str(r) for r in roots]
    runs = collect(roots)
    out = Path(out) if out is not None else Path(roots[0]) / "report"
    out.mkdir(parents=True, exist_ok=True)
    groups, paper = aggregate(runs, split), load_paper(paper_csv)
    sections = build_sections(groups, paper, reference_dataset, tables)
    comparisons = compare(groups, split=split)
    checks = check_claims(groups, paper, comparisons)
    choices = choose_settings(groups)
    pngs: list[Path] = []
    if plots:
        from cfrec.report.plots import plot_beta_search, plot_histories

        pngs = plot_histories(runs, out) + plot_beta_search(runs, out)
    claims = "\n\n".join(filter(None, [claims_markdown(checks, split), tuning_markdown(choices, comparisons)]))
    markdown = render_markdown(sections, runs, roots, split, pngs, claims, hyperparameters_markdown(groups))
    markdown = add_beyond_accuracy(markdown, groups, out, plots)  # + beyond.csv and the activity plots
    (out / "report.md").write_text(markdown + "\n", encoding="utf-8")
    (out / "results.csv").write_text(results_csv(sections), encoding="utf-8")
    (out / "claims.csv").write_text(claims_csv(checks), encoding="utf-8")
    (out / "comparisons.csv").write_text(comparisons_csv(comparisons), encoding="utf-8")
    (out / "tuning.csv").write_text(tuning_csv(choices), encoding="utf-8")
    (out / "hyperparameters.csv").write_text(hyperparameters_csv(groups), encoding="utf-8")
    (out / "runs.csv").write_text(runs_csv(runs), encoding="utf-8")
    write_fragments(out, checks, groups)
    return markdown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cfrec.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweeps", nargs="+", help="sweep (multirun) or run directories; searched recursively")
    parser.add_argument("--out", help="where report.md, results.csv, claims.csv, hyperparameters.csv, runs.csv "
                                      "and the plots go (default: <first sweep>/report)")
    parser.add_argument("--split", choices=("test", "val"), default="test", help="users to report (default: test)")
    parser.add_argument("--reference-dataset", default="ml-20m",
                        help="published numbers shown beside datasets the paper has none for; 'none' for no column")
    parser.add_argument("--tables", help="comma-separated paper tables to show (table2,table3); default: each table "
                                         "holding a row only it has that ran, and Table 2 for Mult-VAE (in both) "
                                         "only when no Table 3 row ran")
    parser.add_argument("--paper-csv", default=str(PAPER_CSV), help="published numbers (default: the packaged one)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    args = parser.parse_args(argv)
    ref = None if args.reference_dataset.lower() in ("none", "") else args.reference_dataset
    tables = [t.strip() for t in args.tables.split(",") if t.strip()] if args.tables else None
    try:
        markdown = report(args.sweeps, args.out, args.split, ref, tables, args.paper_csv, not args.no_plots)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(markdown)
    out = Path(args.out) if args.out else Path(args.sweeps[0]) / "report"
    plots = ", ".join(sorted(p.name for p in out.glob("*.png")))
    print(f"report: wrote report.md, results.csv, comparisons.csv, claims.csv, tuning.csv, hyperparameters.csv, "
          f"runs.csv, beyond.csv, fragments/"
          f"{f' and the plots {plots}' if plots else ''} to {out}/", file=sys.stderr)
    if "Runs: 0 " in markdown:
        print("error: no runs (metrics.json or .hydra/) under " + ", ".join(args.sweeps), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
