"""The paper's claims (conf/claims.yaml, `cfrec.report.claimset`) checked on every dataset that ran: holds / fails /
inconclusive, under thresholds fixed before the runs, with the table of how each verdict moves when they move.

A claim puts Δ = row − against in an interval (lo, hi), in units of mean(against) (its relation, the margin and the
slight/far line). Δ with its SE and df is the seed-aware estimate of `cfrec.report.paired` (per-user files) or, for
runs without per-user files, a Welch test over the runs' means (`cfrec.report.stats.from_means`). One-sided tests at
each finite bound give
- p_claim, the larger p of "Δ > lo" and "Δ < hi" (an intersection-union test; TOST for "on a par"): small when the
  data put Δ inside the interval;
- p_contrary, the smaller p of "Δ < lo" and "Δ > hi": small when the data put Δ outside it.
Both are Holm-adjusted over the family of claims on each dataset (over all datasets at once beside it). The verdict
holds when the adjusted p_claim < alpha, fails when the adjusted p_contrary < alpha, and is inconclusive otherwise
("not run" when a side has no run, "no SE" when a single run has no per-user SE). Each verdict carries its caveats:
one seed, runs still improving at their cap, seed variance borrowed or absent, runs from different code versions or
precisions.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, replace

from cfrec.report.claimset import PAPER_DATASETS, Claim, ClaimSet, Thresholds, load_claims
from cfrec.report.collect import Run
from cfrec.report.formatting import METRIC_LABELS, csv_number, dataset_label, dataset_order, number
from cfrec.report.groups import Group, runs_cell
from cfrec.report.paired import Comparison, environment, versions
from cfrec.report.rows import row_label
from cfrec.report.stats import Estimate, from_means, holm

STILL_IMPROVING = 0.9  # a run whose best epoch is past this share of its epochs (no early stop) may be under-trained
VERDICTS = ("holds", "fails", "inconclusive")


def claims() -> tuple[Claim, ...]:
    """The claims of conf/claims.yaml, in its order."""
    return load_claims().claims


def caveats(group: Group | None) -> list[str]:
    """Why a verdict on this group may not be final: a single seed, or runs still improving at their cap."""
    if group is None or group.n == 0:
        return []
    out = ["1 seed"] if group.n == 1 else []
    improving = [r for r in group.runs if "epochs" in r.metrics and not r.metrics.get("stopped_early")
                 and r.metrics.get("best_epoch", 0) + 1 > STILL_IMPROVING * r.metrics["epochs"]]
    if improving:
        out.append(f"{row_label(group.row)}: best epoch in the last tenth of the budget "
                   f"({len(improving)}/{group.n} runs)")
    return out


@dataclass(frozen=True)
class Decision:
    """A claim's tests against its interval under one set of thresholds, and the verdict they give."""

    bounds: tuple[float, float]  # the interval of Δ / mean(against)
    p_claim: float
    p_contrary: float
    p_claim_holm: float = math.nan
    p_contrary_holm: float = math.nan
    verdict: str = "not run"


@dataclass(frozen=True)
class Check:
    """One claim on one dataset: the groups of its two rows (None: no run), the estimate of Δ and its decisions."""

    claim: Claim
    dataset: str
    model: Group | None
    reference: Group | None  # the `against` row
    comparison: Comparison | None = None  # the paired comparison of the claims' metric, where both have per-user files
    estimate: Estimate | None = None
    mean_against: float = math.nan
    decision: Decision | None = None  # under the preset thresholds, Holm on the dataset
    decision_all: Decision | None = None  # the same, Holm over every dataset

    @property
    def method(self) -> str:
        return self.estimate.method if self.estimate else ""

    @property
    def verdict(self) -> str:
        return self.decision.verdict if self.decision else "not run"

    @property
    def relative(self) -> float:
        return self.estimate.diff / self.mean_against if self.estimate and self.mean_against else math.nan

    @property
    def versions(self) -> tuple[str, str]:
        """(code versions, precisions) of the runs behind the estimate."""
        if self.comparison is not None:
            return self.comparison.code_versions, self.comparison.precisions
        return versions(self._runs)

    @property
    def environment(self) -> tuple[str, str]:
        """(torch / Lightning versions, devices) of the runs behind the estimate."""
        if self.comparison is not None:
            return self.comparison.libraries, self.comparison.devices
        return environment(self._runs)

    @property
    def _runs(self) -> list[Run]:
        return [*(self.model.runs if self.model else []), *(self.reference.runs if self.reference else [])]

    @property
    def caveats(self) -> list[str]:
        out = [*caveats(self.model), *caveats(self.reference)]
        if "borrowed" in self.method:
            side = self.claim.row if self.method.endswith("a borrowed") else self.claim.against
            out.append(f"seed variance of {row_label(side)} (1 seed) taken from the other row")
        elif self.method.startswith("users only"):
            out.append("1 seed each: users only, seed variance not in the CI")
        codes, precisions = self.versions
        if ";" in codes:
            out.append(f"runs from different code versions ({codes.replace(';', ', ')})")
        if ";" in precisions:
            out.append(f"runs at different precisions ({precisions.replace(';', ', ')})")
        return list(dict.fromkeys(out))


def _test(estimate: Estimate | None, mean: float, bounds: tuple[float, float]) -> tuple[float, float]:
    """(p_claim, p_contrary) of Δ inside `bounds` × mean; NaNs without an estimate or SE."""
    if estimate is None or any(math.isnan(x) for x in (estimate.diff, estimate.se, mean)):
        return math.nan, math.nan
    lo, hi = (b * abs(mean) for b in bounds)
    inside = [estimate.p_above(lo)] * (lo > -math.inf) + [estimate.p_below(hi)] * (hi < math.inf)
    outside = [estimate.p_below(lo)] * (lo > -math.inf) + [estimate.p_above(hi)] * (hi < math.inf)
    return max(inside), min(outside)


def decide(checks: list[Check], thresholds: Thresholds, scope: str = "dataset") -> list[Decision]:
    """Each check's decision under `thresholds`, Holm over the family of claims on each dataset (`scope="dataset"`),
    over all of them (`"all"`) or not at all (`"none"`)."""
    raw = []
    for c in checks:
        bounds = c.claim.bounds(thresholds)
        raw.append((bounds, *_test(c.estimate, c.mean_against, bounds)))
    families = ([list(range(len(checks)))] if scope in ("all", "none") else
                [[i for i, c in enumerate(checks) if c.dataset == d] for d in dict.fromkeys(c.dataset for c in checks)])
    adjusted = {i: (p, q) for i, (_, p, q) in enumerate(raw)}
    if scope != "none":
        for family in families:
            for i, p, q in zip(family, holm([raw[i][1] for i in family]), holm([raw[i][2] for i in family])):
                adjusted[i] = (float(p), float(q))
    out = []
    for i, ((bounds, p, q), c) in enumerate(zip(raw, checks)):
        p_adj, q_adj = adjusted[i]
        if c.estimate is None or math.isnan(c.estimate.diff):
            verdict = "not run"
        elif math.isnan(p):
            verdict = "no SE"
        else:
            verdict = "holds" if p_adj < thresholds.alpha else "fails" if q_adj < thresholds.alpha else "inconclusive"
        out.append(Decision(bounds, p, q, p_adj, q_adj, verdict))
    return out


def _fallback(model: Group, reference: Group, metric: str) -> tuple[Estimate, float]:
    """Δ from the runs' means (no per-user files): Welch over seeds, or the runs' per-user SEs for a single run."""
    def means(group: Group) -> list[float]:
        values = [(r.metrics.get(group.split) or {}).get(metric) for r in group.runs]
        return [float(v) for v in values if v is not None]

    a, b = means(model), means(reference)
    se_a, se_b = model.value(metric)[1], reference.value(metric)[1]
    diff, se, df, method = from_means(a, b, se_a, se_b)
    return Estimate(diff, se, df, method), reference.value(metric)[0]


def check_claims(groups: dict[tuple[str, str], Group], comparisons: list[Comparison] = (),
                 claims: ClaimSet | None = None) -> list[Check]:
    """Every claim on every dataset holding one of the claims' rows (ran or not), in the report's order, decided
    under the preset thresholds; `comparisons` (of `cfrec.report.paired.compare`) give the estimates they cover."""
    claims = claims if claims is not None else load_claims()
    rows = {r for c in claims.claims for r in (c.row, c.against)}
    paired = {(c.dataset, c.row_a, c.row_b): c for c in comparisons if c.metric == claims.metric}
    checks = []
    for dataset in dataset_order({d for d, row in groups if row in rows}):
        for claim in claims.claims:
            model, reference = groups.get((dataset, claim.row)), groups.get((dataset, claim.against))
            comparison = paired.get((dataset, claim.row, claim.against))
            estimate, mean = None, math.nan
            if comparison is not None:
                estimate, mean = comparison.estimate, comparison.mean_b
            elif model is not None and reference is not None and model.n and reference.n:
                estimate, mean = _fallback(model, reference, claims.metric)
            checks.append(Check(claim, dataset, model, reference, comparison, estimate, mean))
    chosen, across = decide(checks, claims.thresholds), decide(checks, claims.thresholds, "all")
    return [replace(c, decision=d, decision_all=a) for c, d, a in zip(checks, chosen, across)]


# ---------------------------------------------------------------------------------------------- tables and CSV

def _p(p: float) -> str:
    return "–" if math.isnan(p) else f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"


def _percent(x: float, digits: int = 1) -> str:
    return "–" if math.isnan(x) else f"{x * 100:+.{digits}f} %"


def _share(x: float) -> str:
    """A threshold as a percentage: `2 %`, `5.7 %`."""
    return f"{x * 100:.4g} %"


def _paper_relative(claim: Claim) -> str:
    """`−1.9 % / −1.6 % / −5.1 %`: the paper's Δ / mean(against) on ML-20M, Netflix and MSD."""
    return " / ".join(_percent(a / b - 1) if b else "–"
                      for a, b in (claim.paper.get(d, (math.nan, math.nan)) for d in PAPER_DATASETS))


def _side(group: Group | None, metric: str) -> str:
    mean = group.value(metric)[0] if group else math.nan
    return f"{number(mean)} ({runs_cell(group)})"


def _claim_cell(claim: Claim) -> str:
    reading = f" *(cfrec's reading of `{claim.of}`)*" if claim.reading == "cfrec" else ""
    return f"`{claim.id}`: {claim.text}{reading}"


def _equivalence(c: Check, margin: float, alpha: float) -> str:
    if c.comparison is not None:
        return c.comparison.equivalence
    return c.estimate.equivalence(margin * abs(c.mean_against), alpha) if c.estimate else "–"


def claims_table(checks: list[Check], claims: ClaimSet | None = None) -> str:
    """The claims table alone: one line per (claim, dataset) of `checks`."""
    claims = claims if claims is not None else load_claims()
    t = claims.thresholds
    head = ["Claim", "§", "The paper's words", "Paper Δ (ML-20M / Netflix / MSD)", "Dataset",
            f"{METRIC_LABELS.get(claims.metric, claims.metric)}: row vs against", "Δ (relative)",
            "95 % CI (seeds + users)", "p", "p claim → Holm", "Users only: p t / Wilcoxon", f"TOST ±{_share(t.margin)}",
            "Verdict", "Caveats"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in checks:
        e, d = c.estimate, c.decision
        if e is not None and not math.isnan(e.diff):
            low, high = e.ci()
            delta = f"{number(e.diff, sign=True)} ({_percent(c.relative)})"
            ci, p = f"[{number(low, sign=True)}, {number(high, sign=True)}]", _p(e.p)
        else:
            delta = ci = p = "–"
        users = f"{_p(c.comparison.p_ttest)} / {_p(c.comparison.p_wilcoxon)}" if c.comparison else "–"
        verdict = f"**{c.verdict}**" if c.verdict in VERDICTS else c.verdict
        out.append(f"| {_claim_cell(c.claim)} | {c.claim.section} | “{c.claim.quote}” | {_paper_relative(c.claim)} "
                   f"| {dataset_label(c.dataset)} | {_side(c.model, claims.metric)} vs "
                   f"{_side(c.reference, claims.metric)} | {delta} | {ci} | {p} "
                   f"| {_p(d.p_claim)} → {_p(d.p_claim_holm)} | {users} | {_equivalence(c, t.margin, t.alpha)} "
                   f"| {verdict} | {'; '.join(c.caveats) or '–'} |")
    return "\n".join(out)


def summary_table(checks: list[Check]) -> str:
    """The verdicts at a glance: one line per claim, one column per dataset holding Δ relative to the row compared
    with, the 95 % CI of the difference (seeds + users) and the verdict (README's claims table)."""
    datasets = dataset_order({c.dataset for c in checks})
    claims = list({c.claim.id: c.claim for c in checks}.values())
    cell = {(c.claim.id, c.dataset): c for c in checks}
    out = ["| Claim | " + " | ".join(dataset_label(d) for d in datasets) + " |", "|---|" + "---|" * len(datasets)]
    for claim in claims:
        reading = " *(cfrec's reading)*" if claim.reading == "cfrec" else f" (§{claim.section})"
        cells = []
        for dataset in datasets:
            c = cell.get((claim.id, dataset))
            if c is None or c.estimate is None or math.isnan(c.estimate.diff):
                cells.append(c.verdict if c is not None else "–")
                continue
            low, high = c.estimate.ci()
            verdict = f"**{c.verdict}**" if c.verdict in VERDICTS else c.verdict
            cells.append(f"{_percent(c.relative)} [{number(low, sign=True)}, {number(high, sign=True)}]: {verdict}")
        out.append(f"| {claim.text}{reading} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def sensitivity_table(checks: list[Check], claims: ClaimSet | None = None, dataset: str | None = None) -> str:
    """How each verdict moves: at each margin and each line of the sensitivity grid (the other threshold preset),
    without Holm, and with Holm over all datasets; a verdict that differs from the preset one is in bold. The
    decisions are made on the whole family of `checks`; `dataset` shows only its lines."""
    claims = claims if claims is not None else load_claims()
    t = claims.thresholds
    columns = [(f"margin {_share(m)}", decide(checks, replace(t, margin=m))) for m in claims.margins]
    columns += [(f"line {_share(line)}", decide(checks, replace(t, line=line))) for line in claims.lines]
    columns += [("no Holm", decide(checks, t, "none")), ("Holm over all datasets", decide(checks, t, "all"))]
    head = ["Claim", "Dataset", f"Preset (margin {_share(t.margin)}, line {_share(t.line)})",
            *(name for name, _ in columns)]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, c in enumerate(checks):
        if dataset is not None and c.dataset != dataset:
            continue
        cells = [d[i].verdict if d[i].verdict == c.verdict else f"**{d[i].verdict}**" for _, d in columns]
        out.append(f"| `{c.claim.id}` | {dataset_label(c.dataset)} | {c.verdict} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def every_dataset(checks: list[Check]) -> dict[str, str]:
    """Each claim over the datasets it ran on: holds if it holds on every one (an intersection-union test, valid at
    alpha as it stands), fails if it fails on any, inconclusive otherwise; "not run" when it ran on none."""
    out = {}
    for claim in dict.fromkeys(c.claim.id for c in checks):
        verdicts = [c.verdict for c in checks if c.claim.id == claim and c.verdict in VERDICTS]
        out[claim] = ("not run" if not verdicts else "holds" if all(v == "holds" for v in verdicts)
                      else "fails" if "fails" in verdicts else "inconclusive")
    return out


def datasets_table(checks: list[Check]) -> str:
    """One line per claim: its verdict on each dataset and on every dataset at once (`every_dataset`)."""
    datasets = list(dict.fromkeys(c.dataset for c in checks))
    verdict = {(c.claim.id, c.dataset): c.verdict for c in checks}
    out = ["| Claim | " + " | ".join(map(dataset_label, datasets)) + " | Every dataset that ran |",
           "|---|" + "---|" * (len(datasets) + 1)]
    for claim, overall in every_dataset(checks).items():
        cells = [verdict.get((claim, d), "–") for d in datasets]
        out.append(f"| `{claim}` | " + " | ".join(cells) + f" | **{overall}** |")
    return "\n".join(out)


def mixed_versions(codes: str, precisions: str) -> str:
    """`different code versions (a, b) and different precisions (x, y)` for the `;`-joined labels of runs compared
    that are not all one (`paired.versions`), "" when the code and the precision are each one."""
    return " and ".join(f"different {what} ({v.replace(';', ', ')})"
                        for what, v in (("code versions", codes), ("precisions", precisions)) if ";" in v)


def provenance_notes(checks: list[Check]) -> list[str]:
    """The versions behind the comparisons of each dataset (code, precision, torch / Lightning, device), and
    warnings: comparisons across code versions or precisions, and runs without a recorded version."""
    run = [c for c in checks if c.estimate is not None]
    out = []
    for dataset in dict.fromkeys(c.dataset for c in run):
        fields = zip(*((*c.versions, *c.environment) for c in run if c.dataset == dataset))
        code, precision, libraries, device = (", ".join(sorted({v for x in f for v in x.split(";")})) for f in fields)
        out.append(f"- {dataset_label(dataset)}: code {code}; precision {precision}; libraries {libraries}; "
                   f"device {device}.")
    for c in run:
        if mixed := mixed_versions(*c.versions):
            out.append(f"- **{dataset_label(c.dataset)}, {c.claim.text}**: the runs compared come from {mixed}")
    pairs = {(c.dataset, c.claim.row, c.claim.against): c.versions[0] for c in run}
    unknown = [p for p, codes in pairs.items() if "unknown" in codes]
    if unknown:
        out.append(f"- {len(unknown)} of the {len(pairs)} comparisons rest on runs that record no code version "
                   "(`unknown`: made before metrics.json carried `provenance`); whether their code differed cannot "
                   "be told.")
    return list(dict.fromkeys(out))


def controlled_table(comparisons: list[Comparison], metric: str, dataset: str | None = None) -> str:
    """The like-for-like comparisons of controlled variants (`a[v]` against `b[v]`, `a[v]` against `a`) on the
    claims' metric, outside the claims family (no Holm, no verdict): Δ with the seed-aware CI and p, the users-only p
    and the equivalence outcome, then a line for each comparison whose runs come from different code versions or
    precisions (`mixed_versions`); on one `dataset` (without its column) or all; "" when none."""
    lines = [c for c in comparisons if c.metric == metric and "[" in c.row_a
             and (dataset is None or c.dataset == dataset)]
    if not lines:
        return ""
    head = ["Row", "Against", "Seeds", "Δ (relative)", "95 % CI (seeds + users)", "p", "Users only: p t",
            "Equivalence"]
    head = head if dataset else ["Dataset", *head]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in lines:
        low, high = c.seed_aware_ci_low, c.seed_aware_ci_high
        where = "" if dataset else f"| {dataset_label(c.dataset)} "
        out.append(f"{where}| {row_label(c.row_a)} | {row_label(c.row_b)} "
                   f"| {c.n_seeds_a} vs {c.n_seeds_b} | {number(c.diff, sign=True)} ({_percent(c.relative)}) "
                   f"| [{number(low, sign=True)}, {number(high, sign=True)}] | {_p(c.p_seed_aware)} "
                   f"| {_p(c.p_ttest)} | {c.equivalence} |")
    mixed = [(c, text) for c in lines if (text := mixed_versions(c.code_versions, c.precisions))]
    out += [""] if mixed else []
    for c, text in mixed:
        where = "" if dataset else f"{dataset_label(c.dataset)}, "
        out.append(f"- {where}{row_label(c.row_a)} against {row_label(c.row_b)}: runs from {text}")
    return "\n".join(out)


def claims_markdown(checks: list[Check], split: str = "test", claims: ClaimSet | None = None,
                    comparisons: list[Comparison] = ()) -> str:
    """The section "## The paper's claims": the table, how a verdict is decided, the versions behind it and their
    warnings, the sensitivity table, and the controlled variants like for like (from `comparisons`)."""
    if not checks:
        return ""
    claims = claims if claims is not None else load_claims()
    t = claims.thresholds
    out = ["## The paper's claims", "", claims_table(checks, claims), ""]
    out += [f"Δ = mean of row − against {claims.metric} over the {split} users every run of both rows has, "
            "paired by id, and over each row's seeds. 95 % CI and p: the seed-aware test (variance = the seed "
            "means' variance of each row / its seeds + the users' variance of their paired differences / users, "
            "Welch–Satterthwaite df; `cfrec/report/stats.py`); runs without per-user files: Welch over the runs' "
            "means. Each claim is an interval for Δ / mean(against): *above* (0, ∞), *slightly above* (0, L), "
            "*not above* (−∞, m), *on a par* (−m, m), *slightly below* (−L, 0), *far below* (−∞, −L), with "
            f"margin m = {_share(t.margin)} and line L = {_share(t.line)} (conf/claims.yaml, fixed before the "
            "runs). *p claim*: the one-sided tests that Δ lies inside it (TOST for *on a par*), then Holm over the "
            f"claims on the dataset. **holds**: Holm-adjusted p claim < {t.alpha:g}; **fails**: the Holm-adjusted "
            f"test that Δ lies outside it < {t.alpha:g}; **inconclusive** otherwise. *TOST*: the pair's "
            "equivalence outcome at ±m. *Users only*: the paired t-test and Wilcoxon over users of seed-averaged "
            "values (blind to seed variance; secondary). claims.csv has every p, raw and adjusted on the dataset "
            "and over all datasets; comparisons.csv every pair and metric."]
    notes = provenance_notes(checks)
    if notes:
        out += ["", "**Provenance.**", "", *notes]
    out += ["", "### How the verdicts move with the thresholds", "",
            f"Each verdict again with the margin m at {', '.join(map(_share, claims.margins))} and the line L at "
            f"{', '.join(map(_share, claims.lines))} (the other threshold preset), without Holm, and with Holm over "
            "the claims of all datasets at once; a verdict that moves is in bold.", "",
            sensitivity_table(checks, claims)]
    if len({c.dataset for c in checks if c.verdict in VERDICTS}) > 1:
        out += ["", "### Each claim over the datasets", "",
                "A claim made of every dataset (SIVAE's \"across all benchmark datasets\") holds when it holds on each "
                "one that ran, and fails when it fails on any.", "", datasets_table(checks)]
    if controlled := controlled_table(list(comparisons), claims.metric):
        out += ["", "### Controlled runs, like for like", "",
                "A controlled variant (`variant=NAME`) against the same variant of the other row and against its "
                "own row; outside the claims family (no Holm).", "", controlled]
    return "\n".join(out)


def claims_csv(checks: list[Check], claims: ClaimSet | None = None) -> str:
    """One CSV line per (claim, dataset): the claim in the paper's words, both sides, Δ with the seed-aware CI and p,
    the claim's tests raw and Holm-adjusted, the users-only tests, equivalence, the verdict and its caveats."""
    claims = claims if claims is not None else load_claims()
    t = claims.thresholds
    buf = io.StringIO()
    fields = ["claim", "reading", "of", "section", "quote", "row", "against", "relation", "paper_figures", "dataset",
              "n_seeds_row", "n_seeds_against", "mean_row", "mean_against", "n_users", "method", "diff", "relative",
              "ci_low", "ci_high", "df", "p_seed_aware", "bound_low", "bound_high", "p_claim", "p_claim_holm_dataset",
              "p_claim_holm_all", "p_contrary", "p_contrary_holm_dataset", "p_ttest_users", "p_wilcoxon_users",
              "equivalence_margin", "p_tost", "equivalence", "line", "verdict", "verdict_holm_all", "code_versions",
              "precisions", "caveats"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for c in checks:
        e, d, a, p = c.estimate, c.decision, c.decision_all, c.comparison
        low, high = e.ci() if e else (math.nan, math.nan)
        figures = "; ".join(f"{dataset_label(k)} {x:g} vs {y:g}" for k, (x, y) in c.claim.paper.items())
        margin = t.margin * abs(c.mean_against) if e else math.nan
        writer.writerow({
            "claim": c.claim.id, "reading": c.claim.reading, "of": c.claim.of, "section": c.claim.section,
            "quote": c.claim.quote, "row": c.claim.row, "against": c.claim.against, "relation": c.claim.relation,
            "paper_figures": figures, "dataset": c.dataset,
            "n_seeds_row": p.n_seeds_a if p else c.model.n if c.model else 0,
            "n_seeds_against": p.n_seeds_b if p else c.reference.n if c.reference else 0,
            "mean_row": csv_number(p.mean_a if p else c.model.value(claims.metric)[0] if c.model else math.nan),
            "mean_against": csv_number(c.mean_against), "n_users": p.n_users if p else "", "method": c.method,
            "diff": csv_number(e.diff if e else math.nan), "relative": csv_number(c.relative),
            "ci_low": csv_number(low), "ci_high": csv_number(high), "df": csv_number(e.df if e else math.nan),
            "p_seed_aware": csv_number(e.p if e else math.nan), "bound_low": csv_number(d.bounds[0]),
            "bound_high": csv_number(d.bounds[1]), "p_claim": csv_number(d.p_claim),
            "p_claim_holm_dataset": csv_number(d.p_claim_holm), "p_claim_holm_all": csv_number(a.p_claim_holm),
            "p_contrary": csv_number(d.p_contrary), "p_contrary_holm_dataset": csv_number(d.p_contrary_holm),
            "p_ttest_users": csv_number(p.p_ttest if p else math.nan),
            "p_wilcoxon_users": csv_number(p.p_wilcoxon if p else math.nan), "equivalence_margin": csv_number(t.margin),
            "p_tost": csv_number(e.tost(margin) if e else math.nan), "equivalence": _equivalence(c, t.margin, t.alpha),
            "line": csv_number(t.line), "verdict": c.verdict, "verdict_holm_all": a.verdict,
            "code_versions": c.versions[0], "precisions": c.versions[1], "caveats": "; ".join(c.caveats)})
    return buf.getvalue()
