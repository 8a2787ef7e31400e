"""`python -m cfrec.report <sweep dir> [<sweep dir> ...] [--out DIR]`: the paper's tables over finished sweeps.

Prints the Markdown report and writes, under --out (default: `<first sweep dir>/report`): report.md,
results.csv (one line per table × dataset × model), comparisons.csv (every row against Mult-VAE, and each other
pair a claim compares, on the same users: the seed-aware test, Holm, TOST, the users-only paired t-test and
Wilcoxon per metric), claims.csv (one line per claim of conf/claims.yaml × dataset),
tuning.csv (each row's grid points and the setting chosen on validation users), hyperparameters.csv (one line
per dataset × model: settings, epochs, fit time), runs.csv (one line per run),
beyond.csv (coverage, Gini, popularity and NDCG@100 by activity quintile per dataset × model), the PNG plots,
and fragments/ (the verdicts of every dataset at a glance; per dataset: the claims table, its sensitivity, the
claim rows' seeds, the controlled runs' comparisons and the beyond-accuracy tables, for hand-written pages to
include with `python -m cfrec.report.include`).
The claims and the thresholds that decide them come from conf/claims.yaml (`--claims FILE` for another);
the methods are described in docs/statistics.md.
Exit status 0 even when runs failed (they are listed); 2, with one line `error: ...` and nothing written, when
no run was found or an option is wrong (a missing directory, --paper-csv or --claims file, an unknown --tables or
--reference-dataset, a malformed claims file).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cfrec.errors import ConfigError, UserError
from cfrec.io import atomic_write_bytes
from cfrec.report.beyond import add_beyond_accuracy
from cfrec.report.claims import check_claims, claims_csv, claims_markdown
from cfrec.report.claimset import CLAIMS_YAML, load_claims
from cfrec.report.collect import collect
from cfrec.report.document import render_markdown, runs_csv
from cfrec.report.fragments import write_fragments
from cfrec.report.groups import aggregate
from cfrec.report.hparams import hyperparameters_csv, hyperparameters_markdown
from cfrec.report.paired import compare, comparisons_csv
from cfrec.report.paper import PAPER_CSV, PaperRow, load_paper
from cfrec.report.rows import REFERENCE
from cfrec.report.tables import PAPER_TABLES, build_sections, results_csv
from cfrec.report.tuning import choose_settings, tuning_csv, tuning_markdown


def report(roots: list[str | Path], out: str | Path | None = None, split: str = "test",
           reference_dataset: str | None = None, tables: list[str] | None = None,
           paper_csv: str | Path = PAPER_CSV, plots: bool = True, claims_yaml: str | Path = CLAIMS_YAML) -> str:
    """Build the report of the runs under `roots`, write its files to `out`, return the Markdown.

    `reference_dataset`: the paper dataset whose published numbers are shown beside a dataset the paper has none
    for (None: no such columns). `claims_yaml`: the claims and their thresholds (conf/claims.yaml). Raises
    ConfigError (nothing written) when no run is found or an option or the claims file is wrong.
    """
    roots = [str(r) for r in roots]
    runs = collect(roots)
    if not runs:
        raise ConfigError(f"no runs (metrics.json or .hydra/) under {', '.join(roots)}")
    paper = _paper(paper_csv, reference_dataset, tables)
    claimset = load_claims(Path(claims_yaml))
    out = Path(out) if out is not None else Path(roots[0]) / "report"
    out.mkdir(parents=True, exist_ok=True)
    groups = aggregate(runs, split)
    sections = build_sections(groups, paper, reference_dataset, tables)
    comparisons = compare(groups, split=split, claims=claimset)
    checks = check_claims(groups, comparisons, claimset)
    choices = choose_settings(groups)
    pngs: list[Path] = []
    if plots:
        from cfrec.report.plots import plot_beta_search, plot_histories

        pngs = plot_histories(runs, out) + plot_beta_search(runs, out)
    against_reference = [c for c in comparisons if c.row_b == REFERENCE]
    claims = "\n\n".join(filter(None, [claims_markdown(checks, split, claimset, comparisons),
                                        tuning_markdown(choices, against_reference)]))
    markdown = render_markdown(sections, runs, roots, split, pngs, claims, hyperparameters_markdown(groups))
    markdown = add_beyond_accuracy(markdown, groups, out, plots)  # + beyond.csv and the activity plots
    files = {"report.md": markdown + "\n", "results.csv": results_csv(sections),
             "claims.csv": claims_csv(checks, claimset), "comparisons.csv": comparisons_csv(comparisons),
             "tuning.csv": tuning_csv(choices), "hyperparameters.csv": hyperparameters_csv(groups),
             "runs.csv": runs_csv(runs)}
    for name, text in files.items():
        atomic_write_bytes(out / name, text.encode("utf-8"))
    write_fragments(out, checks, groups, claimset, comparisons)
    return markdown


def _paper(paper_csv: str | Path, reference_dataset: str | None, tables: list[str] | None) -> list[PaperRow]:
    """The published numbers, after checking the options that name their datasets and tables."""
    try:
        paper = load_paper(paper_csv)
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"--paper-csv {paper_csv}: cannot be read ({exc})") from None
    datasets = sorted({p.dataset for p in paper})
    if reference_dataset is not None and reference_dataset not in datasets:
        raise ConfigError(f"--reference-dataset {reference_dataset}: the paper has no numbers for it; "
                          f"choose one of {', '.join(datasets)} or none")
    unknown = [t for t in tables or [] if t not in PAPER_TABLES]
    if unknown:
        raise ConfigError(f"--tables {','.join(unknown)}: no such table; choose from {', '.join(PAPER_TABLES)}")
    return paper


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cfrec.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweeps", nargs="+", help="sweep (multirun) or run directories; searched recursively")
    parser.add_argument("--out", help="where report.md, results.csv, claims.csv, hyperparameters.csv, runs.csv "
                                      "and the plots go (default: <first sweep>/report)")
    parser.add_argument("--split", choices=("test", "val"), default="test", help="users to report (default: test)")
    parser.add_argument("--reference-dataset", default="none",
                        help="a paper dataset (ml-20m, netflix, msd) whose published numbers are shown, for reference "
                             "only, beside datasets the paper has none for (default: none, no such columns)")
    parser.add_argument("--tables", help="comma-separated paper tables to show (table2,table3); default: each table "
                                         "holding a row only it has that ran, and Table 2 for Mult-VAE (in both) "
                                         "only when no Table 3 row ran")
    parser.add_argument("--paper-csv", default=str(PAPER_CSV), help="published numbers (default: the packaged one)")
    parser.add_argument("--claims", default=str(CLAIMS_YAML),
                        help="the claims and the thresholds that decide them (default: conf/claims.yaml)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    args = parser.parse_args(argv)
    ref = None if args.reference_dataset.lower() in ("none", "") else args.reference_dataset
    tables = [t.strip() for t in args.tables.split(",") if t.strip()] if args.tables else None
    try:
        markdown = report(args.sweeps, args.out, args.split, ref, tables, args.paper_csv, not args.no_plots,
                          args.claims)
    except (FileNotFoundError, UserError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(markdown)
    out = Path(args.out) if args.out else Path(args.sweeps[0]) / "report"
    plots = ", ".join(sorted(p.name for p in out.glob("*.png")))
    print(f"report: wrote report.md, results.csv, comparisons.csv, claims.csv, tuning.csv, hyperparameters.csv, "
          f"runs.csv, beyond.csv, fragments/"
          f"{f' and the plots {plots}' if plots else ''} to {out}/", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
