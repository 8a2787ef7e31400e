"""The paper's claims (ICTIR'22 §4), each a model's NDCG@100 against Mult-VAE's, checked on every dataset that ran.

d = mean(model) − mean(Mult-VAE), s = √(se_model² + se_Mult-VAE²), with the means and SEs of `Group.value`
(SE across seeds for ≥ 2 seeds, the single run's per-user SE otherwise). The observed relation is "above"
when d > 2s, "below" when d < −2s ("far below" when also d < −5% of Mult-VAE's mean), "on a par" otherwise;
a claim holds when it names that relation ("slightly below": below but not far below).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

from cfrec.report.collect import row_label
from cfrec.report.tables import Group, PaperRow, _csv, _dataset_order, _fmt, _runs_cell, dataset_label

METRIC = "ndcg@100"
REFERENCE = "mult_vae"
PAPER_DATASET = "ml-20m"  # the paper's differences shown beside ours
FAR_BELOW = 0.05  # a drop of more than this fraction of Mult-VAE's mean is "far below"
_AS_OBSERVED = {"slightly below": "below"}  # claimed relation -> the observed one it needs


@dataclass(frozen=True)
class Claim:
    """The paper's claim that `row` stands in `relation` to Mult-VAE (`text`: its wording)."""

    row: str
    relation: str  # above / on a par / slightly below / far below
    text: str


CLAIMS = (
    Claim("multinomial", "slightly below", "KL-free Multinomial (β = 0) slightly below Mult-VAE"),
    Claim("logistic", "on a par", "KL-free Logistic on a par with Mult-VAE"),
    Claim("vae_vamp", "on a par", "VAE+Vamp on a par with Mult-VAE"),
    Claim("vae_iaf", "slightly below", "VAE+IAF slightly below Mult-VAE"),
    Claim("vae_reg", "far below", "VAE+Reg far below Mult-VAE"),
    Claim("sivae", "above", "SIVAE above Mult-VAE"),
)


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
        return relation(self.d, self.s, self.values()[2])

    @property
    def holds(self) -> str:
        """yes / no; "not run" when the model or Mult-VAE has no value, "no SE" when a side lacks its SE."""
        if math.isnan(self.d):
            return "not run"
        if math.isnan(self.s):
            return "no SE"
        return "yes" if self.observed == _AS_OBSERVED.get(self.claim.relation, self.claim.relation) else "no"


def check_claims(groups: dict[tuple[str, str], Group], paper: list[PaperRow]) -> list[Check]:
    """Every claim on every dataset holding Mult-VAE or a claimed row (ran or not), in the report's order."""
    published = {p.model: p.values[METRIC] for p in paper if p.dataset == PAPER_DATASET}
    rows = {c.row for c in CLAIMS} | {REFERENCE}
    ref_paper = published.get(row_label(REFERENCE), math.nan)
    return [Check(c, dataset, groups.get((dataset, c.row)), groups.get((dataset, REFERENCE)),
                  published.get(row_label(c.row), math.nan) - ref_paper)
            for dataset in _dataset_order({d for d, row in groups if row in rows}) for c in CLAIMS]


def _side(group: Group | None) -> str:
    mean = group.value(METRIC)[0] if group else math.nan
    return f"{_fmt(mean)} ({_runs_cell(group)})"


def claims_markdown(checks: list[Check], split: str = "test") -> str:
    """The section "## The paper's claims": one line per (claim, dataset), then how the verdicts are made."""
    if not checks:
        return ""
    head = ["Claim (ICTIR'22 §4)", "Dataset", "NDCG@100: model vs Mult-VAE", "d ± 2s",
            f"paper d ({dataset_label(PAPER_DATASET)})", "Observed", "Holds?"]
    out = ["## The paper's claims", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in checks:
        d = "–" if math.isnan(c.d) else f"{_fmt(c.d, sign=True)} ± {_fmt(2 * c.s)}"
        out.append(f"| {c.claim.text} | {dataset_label(c.dataset)} | {_side(c.model)} vs {_side(c.reference)} "
                   f"| {d} | {_fmt(c.paper_d, 3, sign=True)} | {c.observed} | {c.holds} |")
    out += ["", f"d = mean(model) − mean(Mult-VAE) of {split} NDCG@100 on that dataset; s = √(se_model² + "
                "se_Mult-VAE²), where se is the standard error across seeds for a row with ≥ 2 seeds and the "
                "single run's per-user standard error (†) otherwise. Observed: *above* if d > 2s; *below* if "
                f"d < −2s, and *far below* if also d < −{FAR_BELOW:g} × mean(Mult-VAE) (more than "
                f"{FAR_BELOW:.0%} under it); *on a par* otherwise. A claim holds when the observed relation is "
                "the claimed one (*slightly below*: below but not far below); *not run*: the model or Mult-VAE "
                f"has no successful run. *paper d*: the published difference on {dataset_label(PAPER_DATASET)}."]
    return "\n".join(out)


def claims_csv(checks: list[Check]) -> str:
    """One CSV line per (claim, dataset): both sides' mean, SE and runs, d, 2s, the paper's d and the verdict."""
    buf = io.StringIO()
    fields = ["claim", "row", "claimed", "dataset", "n_runs", "se_kind", METRIC, f"{METRIC}_se", "ref_n_runs",
              "ref_se_kind", f"ref_{METRIC}", f"ref_{METRIC}_se", "d", "two_s", "paper_d", "observed", "holds"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for c in checks:
        mean, se, ref, ref_se = c.values()
        writer.writerow({
            "claim": c.claim.text, "row": c.claim.row, "claimed": c.claim.relation, "dataset": c.dataset,
            "n_runs": c.model.n if c.model else 0, "se_kind": c.model.se_kind if c.model else "none",
            METRIC: _csv(mean), f"{METRIC}_se": _csv(se), "ref_n_runs": c.reference.n if c.reference else 0,
            "ref_se_kind": c.reference.se_kind if c.reference else "none", f"ref_{METRIC}": _csv(ref),
            f"ref_{METRIC}_se": _csv(ref_se), "d": _csv(c.d), "two_s": _csv(2 * c.s), "paper_d": _csv(c.paper_d),
            "observed": c.observed, "holds": c.holds})
    return buf.getvalue()
