"""The paper's claims (ICTIR'22 §4), each a model's NDCG@100 against Mult-VAE's, checked on every dataset that ran.

Where both rows have per-user files, the verdict comes from the paired tests of `cfrec.report.paired`
(users paired by id, each user's value averaged over the row's seeds): the relation is "above" / "below"
when the paired t-test and the Wilcoxon signed-rank test both give p < 0.05, in the direction of the mean
paired difference d, and "on a par" otherwise; "below" is "far below" when d is also under −5 % of Mult-VAE's
mean. Runs without per-user files (made before cfrec wrote them) fall back to d against s = √(se_model² +
se_Mult-VAE²) from `Group.value`: "above" when d > 2s, "below" when d < −2s. A claim holds when it names the
observed relation ("slightly below": below but not far below). A verdict carries its caveats: one seed, or a
run whose best epoch was within the last tenth of its budget without early stopping (still improving).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

from cfrec.report.formatting import csv_number, dataset_label, dataset_order, number
from cfrec.report.groups import Group, runs_cell
from cfrec.report.paired import Comparison
from cfrec.report.paper import PaperRow
from cfrec.report.rows import REFERENCE, claim_text, row_label, rows

METRIC = "ndcg@100"
PAPER_DATASET = "ml-20m"  # the paper's differences shown beside ours
FAR_BELOW = 0.05  # a drop of more than this fraction of Mult-VAE's mean is "far below"
ALPHA = 0.05  # both paired tests must reject "no difference" at this level
STILL_IMPROVING = 0.9  # a run whose best epoch is past this share of its epochs (no early stop) may be under-trained
_AS_OBSERVED = {"slightly below": "below"}  # claimed relation -> the observed one it needs


@dataclass(frozen=True)
class Claim:
    """The paper's claim that `row` stands in `relation` to Mult-VAE (`text`: its wording)."""

    row: str
    relation: str  # above / on a par / slightly below / far below
    text: str


def claims() -> tuple[Claim, ...]:
    """The claims of the row files (`report.claim` in conf/row/<name>.yaml), in the report's row order."""
    return tuple(Claim(row.name, row.claim, claim_text(row)) for row in rows().values() if row.claim)


def paired_relation(c: Comparison) -> str:
    """The observed relation of row a to row b from their paired tests; "–" when a figure is NaN."""
    if any(math.isnan(x) for x in (c.diff, c.p_ttest, c.p_wilcoxon, c.mean_b)):
        return "–"
    if max(c.p_ttest, c.p_wilcoxon) >= ALPHA:
        return "on a par"
    if c.diff > 0:
        return "above"
    return "far below" if c.diff < -FAR_BELOW * c.mean_b else "below"


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


def relation(d: float, s: float, reference: float) -> str:
    """The observed relation of a model to Mult-VAE (mean `reference`) from d and s; "–" when any is NaN."""
    if any(math.isnan(x) for x in (d, s, reference)):
        return "–"
    if d > 2 * s:
        return "above"
    if d < -2 * s:
        return "far below" if d < -FAR_BELOW * reference else "below"
    return "on a par"


@dataclass(frozen=True)
class Check:
    """One claim on one dataset: our groups of the model and of Mult-VAE (None: no run) and the paper's d."""

    claim: Claim
    dataset: str
    model: Group | None
    reference: Group | None
    paper_d: float
    comparison: Comparison | None = None  # the paired test of NDCG@100, where both rows have per-user files

    @property
    def method(self) -> str:
        """`paired` (per-user tests) or `seeds` (means ± SE, for runs without per-user files)."""
        return "paired" if self.comparison is not None else "seeds"

    @property
    def caveats(self) -> list[str]:
        return list(dict.fromkeys([*caveats(self.model), *caveats(self.reference)]))

    def values(self) -> tuple[float, float, float, float]:
        """(model mean, model SE, Mult-VAE mean, Mult-VAE SE); NaNs for a side without a successful run."""
        none = (math.nan, math.nan)
        return (*(self.model.value(METRIC) if self.model else none),
                *(self.reference.value(METRIC) if self.reference else none))

    @property
    def d(self) -> float:
        mean, _, ref, _ = self.values()
        return mean - ref

    @property
    def s(self) -> float:
        _, se, _, ref_se = self.values()
        return math.hypot(se, ref_se)

    @property
    def observed(self) -> str:
        if self.comparison is not None:
            return paired_relation(self.comparison)
        return relation(self.d, self.s, self.values()[2])

    @property
    def holds(self) -> str:
        """yes / no; "not run" when the model or Mult-VAE has no value, "no SE" when a side lacks its SE."""
        if math.isnan(self.d):
            return "not run"
        if math.isnan(self.s) and self.comparison is None:
            return "no SE"
        return "yes" if self.observed == _AS_OBSERVED.get(self.claim.relation, self.claim.relation) else "no"


def check_claims(groups: dict[tuple[str, str], Group], paper: list[PaperRow],
                 comparisons: list[Comparison] = ()) -> list[Check]:
    """Every claim on every dataset holding Mult-VAE or a claimed row (ran or not), in the report's order;
    `comparisons` (of `cfrec.report.paired.compare`) decide the verdicts they cover."""
    published = {p.model: p.values[METRIC] for p in paper if p.dataset == PAPER_DATASET}
    claimed = claims()
    rows_in_claims = {c.row for c in claimed} | {REFERENCE}
    ref_paper = published.get(row_label(REFERENCE), math.nan)
    paired = {(c.dataset, c.row_a): c for c in comparisons if c.metric == METRIC and c.row_b == REFERENCE}
    return [Check(c, dataset, groups.get((dataset, c.row)), groups.get((dataset, REFERENCE)),
                  published.get(row_label(c.row), math.nan) - ref_paper, paired.get((dataset, c.row)))
            for dataset in dataset_order({d for d, row in groups if row in rows_in_claims}) for c in claimed]


def _side(group: Group | None) -> str:
    mean = group.value(METRIC)[0] if group else math.nan
    return f"{number(mean)} ({runs_cell(group)})"


def _difference(c: Check) -> str:
    """Δ [95 % CI] of the paired test, or d ± 2s for runs without per-user files."""
    if c.comparison is not None:
        p = c.comparison
        return f"{number(p.diff, sign=True)} [{number(p.ci_low, sign=True)}, {number(p.ci_high, sign=True)}]"
    return "–" if math.isnan(c.d) else f"{number(c.d, sign=True)} ± {number(2 * c.s)} (seeds)"


def _p_values(c: Check) -> str:
    if c.comparison is None:
        return "–"
    return f"{_p(c.comparison.p_ttest)} / {_p(c.comparison.p_wilcoxon)}"


def _p(p: float) -> str:
    return "–" if math.isnan(p) else f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"


def claims_table(checks: list[Check]) -> str:
    """The claims table alone: one line per (claim, dataset) of `checks`."""
    head = ["Claim (ICTIR'22 §4)", "Dataset", "NDCG@100: model vs Mult-VAE", "Δ [95% CI]", "p (t / Wilcoxon)",
            f"paper d ({dataset_label(PAPER_DATASET)})", "Observed", "Holds?", "Caveats"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in checks:
        out.append(f"| {c.claim.text} | {dataset_label(c.dataset)} | {_side(c.model)} vs {_side(c.reference)} "
                   f"| {_difference(c)} | {_p_values(c)} | {number(c.paper_d, 3, sign=True)} | {c.observed} "
                   f"| {c.holds} | {'; '.join(c.caveats) or '–'} |")
    return "\n".join(out)


def claims_markdown(checks: list[Check], split: str = "test") -> str:
    """The section "## The paper's claims": one line per (claim, dataset), then how the verdicts are made."""
    if not checks:
        return ""
    out = ["## The paper's claims", "", claims_table(checks)]
    out += ["", f"Δ = the mean over {split} users of model − Mult-VAE NDCG@100, each user's value averaged over the "
                "row's seeds, users paired by id, with the 95 % t-interval; p: `scipy.stats.ttest_rel` / "
                f"`scipy.stats.wilcoxon` on the paired values (comparisons.csv has every row and metric). Observed: "
                f"*above* / *below* when both p < {ALPHA:g}, in the direction of Δ; *far below* when also "
                f"Δ < −{FAR_BELOW:g} × mean(Mult-VAE) (more than {FAR_BELOW:.0%} under it); *on a par* otherwise. "
                "Runs without per-user files fall back to d ± 2s (seeds): d = mean(model) − mean(Mult-VAE), s = "
                "√(se_model² + se_Mult-VAE²), SE across seeds (a single run's per-user SE, †), *above* if d > 2s, "
                "*below* if d < −2s. A claim holds when the observed relation is the claimed one (*slightly "
                "below*: below but not far below); *not run*: the model or Mult-VAE has no successful run. "
                "Caveats: a single seed, or runs whose best epoch fell in the last tenth of their budget without "
                f"early stopping (perhaps under-trained). *paper d*: the published difference on "
                f"{dataset_label(PAPER_DATASET)}."]
    return "\n".join(out)


def claims_csv(checks: list[Check]) -> str:
    """One CSV line per (claim, dataset): both sides' mean, SE and runs, d, 2s, the paper's d and the verdict."""
    buf = io.StringIO()
    fields = ["claim", "row", "claimed", "dataset", "n_runs", "se_kind", METRIC, f"{METRIC}_se", "ref_n_runs",
              "ref_se_kind", f"ref_{METRIC}", f"ref_{METRIC}_se", "d", "two_s", "method", "n_users", "diff", "ci_low",
              "ci_high", "p_ttest", "p_wilcoxon", "paper_d", "observed", "holds", "caveats"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for c in checks:
        mean, se, ref, ref_se = c.values()
        writer.writerow({
            "claim": c.claim.text, "row": c.claim.row, "claimed": c.claim.relation, "dataset": c.dataset,
            "n_runs": c.model.n if c.model else 0, "se_kind": c.model.se_kind if c.model else "none",
            METRIC: csv_number(mean), f"{METRIC}_se": csv_number(se),
            "ref_n_runs": c.reference.n if c.reference else 0,
            "ref_se_kind": c.reference.se_kind if c.reference else "none", f"ref_{METRIC}": csv_number(ref),
            f"ref_{METRIC}_se": csv_number(ref_se), "d": csv_number(c.d), "two_s": csv_number(2 * c.s),
            "method": c.method,
            **_paired_fields(c.comparison), "paper_d": csv_number(c.paper_d), "observed": c.observed, "holds": c.holds,
            "caveats": "; ".join(c.caveats)})
    return buf.getvalue()


def _paired_fields(c: Comparison | None) -> dict[str, str]:
    keys = ("diff", "ci_low", "ci_high", "p_ttest", "p_wilcoxon")
    if c is None:
        return {"n_users": "", **{k: "" for k in keys}}
    return {"n_users": str(c.n_users), **{k: csv_number(getattr(c, k)) for k in keys}}
