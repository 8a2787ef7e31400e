"""The claims family (conf/claims.yaml, `cfrec.report.claimset`) and how `cfrec.report.claims` decides it: each
relation's interval, Holm over a dataset's claims, the sensitivity table, and the provenance warnings."""

from __future__ import annotations

import csv
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cfrec.errors import ConfigError
from cfrec.report.__main__ import main
from cfrec.report.claims import Check, datasets_table, decide, every_dataset, sensitivity_table
from cfrec.report.claimset import CLAIMS_YAML, Thresholds, load_claims
from cfrec.report.paper import load_paper
from cfrec.report.stats import Estimate
from tests.report.test_paired import write_per_user
from tests.report.test_report import write_run

CLAIMS = {c.id: c for c in load_claims().claims}
PRESET = Thresholds(alpha=0.05, margin=0.02, line=0.10)


def test_the_claims_file_holds_the_papers_claims_in_its_own_words():
    claimset = load_claims()
    assert claimset.thresholds == PRESET and claimset.metric == "ndcg@100"
    assert claimset.margins == (0.01, 0.02, 0.03) and claimset.lines == (0.057, 0.10, 0.155)
    got = {c.id: (c.row, c.against, c.relation, c.section, c.reading) for c in claimset.claims}
    assert got == {
        "kl_free_close_multinomial": ("multinomial", "mult_vae", "on a par", "4.4", "paper"),
        "kl_free_close_logistic": ("logistic", "mult_vae", "on a par", "4.4", "paper"),
        "multinomial_slightly_below": ("multinomial", "mult_vae", "slightly below", "4.4", "cfrec"),
        "logistic_better_than_multinomial": ("logistic", "multinomial", "slightly above", "4.4", "paper"),
        "vamp_no_gain": ("vae_vamp", "mult_vae", "not above", "4.5", "paper"),
        "vamp_on_a_par": ("vae_vamp", "mult_vae", "on a par", "4.5", "cfrec"),
        "iaf_no_gain": ("vae_iaf", "mult_vae", "not above", "4.5", "paper"),
        "iaf_slightly_below": ("vae_iaf", "mult_vae", "slightly below", "4.5", "paper"),
        "reg_severely_below": ("vae_reg", "mult_vae", "far below", "4.5", "paper"),
        "sivae_above": ("sivae", "mult_vae", "above", "4.5", "paper"),
    }
    assert CLAIMS["iaf_slightly_below"].quote == "In fact, employing IAF slightly decreases the performance."
    assert CLAIMS["vamp_on_a_par"].quote == CLAIMS["vamp_no_gain"].quote  # a cfrec reading shows the paper's words
    published = {(p.dataset, p.model): p.values["ndcg@100"] for p in load_paper()}
    assert CLAIMS["logistic_better_than_multinomial"].paper == {
        d: (published[(d, "Logistic")], published[(d, "Multinomial")]) for d in ("ml-20m", "netflix", "msd")}


@pytest.mark.parametrize(("old", "new", "message"), [
    ("row: vae_reg", "row: vae_regg", "claim 'reg_severely_below': unknown ['vae_regg']"),
    ("relation: far below", "relation: much below", "claim 'reg_severely_below': unknown ['much below']"),
    ("msd: [0.120, 0.316]", "msd: [0.125, 0.316]", "claim 'reg_severely_below': paper.msd [0.125, 0.316] is not"),
    ("of: vamp_no_gain", "of: vamp_on_a_par", "claim 'vamp_on_a_par': `of: vamp_on_a_par` is not a paper claim"),
    ("id: iaf_no_gain", "id: iaf_slightly_below", "claim ids repeat: ['iaf_slightly_below']"),
    ("margin: 0.02", "margin: 2", "`margin` must be a number between 0 and 1, not 2"),
    ("metric: ndcg@100", "metric: ndcg@10", "`metric: ndcg@10` is not one of"),
])
def test_a_malformed_claims_file_is_a_config_error_naming_it(tmp_path: Path, old: str, new: str, message: str):
    text = CLAIMS_YAML.read_text()
    assert old in text
    path = tmp_path / "claims.yaml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError, match=re.escape(f"{path}: ") + ".*" + re.escape(message)):
        load_claims(path)


def test_a_claims_file_that_cannot_be_loaded_stops_the_report_with_one_line(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]):
    write_run(tmp_path / "sweep" / "vae", row="mult_vae")
    broken = tmp_path / "claims.yaml"
    broken.write_text(CLAIMS_YAML.read_text().replace("relation: far below", "relation: much below"))
    out = tmp_path / "out"
    assert main([str(tmp_path / "sweep"), "--out", str(out), "--no-plots", "--claims", str(broken)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {broken}: claim 'reg_severely_below': unknown ['much below']") and "\n" not in err
    assert not out.exists()  # nothing written
    assert main([str(tmp_path / "sweep"), "--out", str(out), "--no-plots", "--claims", str(tmp_path / "no.yaml")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'no.yaml'}: cannot be read")


def check(claim_id: str, diff: float, se: float, dataset: str = "ml-1m", mean: float = 0.4,
          df: float = 1e6) -> Check:
    """A check of a conf/claims.yaml claim with a given estimate of Δ (no groups: decided by `decide` alone)."""
    return Check(CLAIMS[claim_id], dataset, None, None, estimate=Estimate(diff, se, df, "test"), mean_against=mean)


@pytest.mark.parametrize(("claim_id", "diff", "se", "verdict"), [
    # mean(against) 0.4: margin 2 % = 0.008, line 10 % = 0.04
    ("sivae_above", 0.01, 0.002, "holds"), ("sivae_above", -0.01, 0.002, "fails"),
    ("sivae_above", 0.002, 0.002, "inconclusive"),
    ("iaf_slightly_below", -0.02, 0.002, "holds"), ("iaf_slightly_below", -0.06, 0.002, "fails"),
    ("iaf_slightly_below", 0.01, 0.002, "fails"), ("iaf_slightly_below", -0.039, 0.01, "inconclusive"),
    ("reg_severely_below", -0.06, 0.002, "holds"), ("reg_severely_below", -0.02, 0.002, "fails"),
    ("iaf_no_gain", 0.004, 0.001, "holds"), ("iaf_no_gain", -0.05, 0.002, "holds"),
    ("iaf_no_gain", 0.02, 0.002, "fails"),
    ("vamp_on_a_par", 0.001, 0.002, "holds"), ("vamp_on_a_par", -0.02, 0.002, "fails"),
    ("vamp_on_a_par", -0.009, 0.002, "inconclusive"),  # beyond the margin, but not shown to be
    ("logistic_better_than_multinomial", 0.02, 0.002, "holds"),
    ("logistic_better_than_multinomial", 0.06, 0.002, "fails"),
])
def test_each_relation_is_an_interval_the_estimate_must_be_shown_inside(claim_id: str, diff: float, se: float,
                                                                        verdict: str):
    assert decide([check(claim_id, diff, se)], PRESET)[0].verdict == verdict


def test_no_estimate_or_no_se_gives_no_verdict():
    missing = replace(check("sivae_above", 0.0, 0.0), estimate=None)
    no_se = check("sivae_above", 0.01, math.nan)
    assert [d.verdict for d in decide([missing, no_se], PRESET)] == ["not run", "no SE"]


def test_holm_over_the_claims_of_a_dataset_and_over_all_datasets():
    """Two claims at raw p_claim ≈ 0.03 each: alone each holds; Holm over the two doubles p past 0.05."""
    z = 1.8807936081512509  # one-sided p = 0.03 under the normal (df → ∞)
    pair = [check("sivae_above", z * 0.002, 0.002, "a"), check("sivae_above", z * 0.002, 0.002, "b")]
    assert [d.verdict for d in decide(pair, PRESET)] == ["holds", "holds"]  # one claim per dataset
    across = decide(pair, PRESET, "all")
    assert [d.verdict for d in across] == ["inconclusive"] * 2
    assert across[0].p_claim == pytest.approx(0.03, rel=1e-4) and across[0].p_claim_holm == pytest.approx(0.06,
                                                                                                            rel=1e-4)
    same = [replace(c, dataset="a") for c in pair]
    assert [d.verdict for d in decide(same, PRESET)] == ["inconclusive"] * 2
    assert [d.verdict for d in decide(same, PRESET, "none")] == ["holds"] * 2


def test_a_claim_over_every_dataset_holds_only_where_it_holds_on_each():
    """SIVAE above on ML-1M and citeulike-a, not on ML-20M; VAE+Reg far below on one dataset, shown not on the other;
    VAE+IAF slightly below where it ran once."""
    raw = [check("sivae_above", 0.01, 0.002, "ml-1m"), check("sivae_above", 0.01, 0.002, "citeulike-a"),
           check("reg_severely_below", -0.06, 0.002, "ml-1m"), check("reg_severely_below", -0.01, 0.002, "citeulike-a"),
           check("iaf_slightly_below", -0.02, 0.002, "ml-1m"), check("iaf_slightly_below", -0.02, 0.05, "citeulike-a")]
    checks = [replace(c, decision=d) for c, d in zip(raw, decide(raw, PRESET))]
    assert every_dataset(checks) == {"sivae_above": "holds", "reg_severely_below": "fails",
                                     "iaf_slightly_below": "inconclusive"}
    unrun = replace(checks[0], estimate=None, decision=decide([replace(checks[0], estimate=None)], PRESET)[0])
    assert every_dataset([unrun]) == {"sivae_above": "not run"}
    lines = datasets_table(checks).splitlines()
    assert lines[0] == "| Claim | ml-1m | citeulike-a | Every dataset that ran |"
    assert lines[3] == "| `reg_severely_below` | holds | fails | **fails** |"


def test_the_sensitivity_table_marks_each_verdict_that_moves_with_a_threshold():
    """VAE+Vamp −0.010 ± 0.001 on a mean 0.4 (−2.5 %): on a par fails at margins 1 % and 2 %, holds at 3 %;
    Multinomial −0.030 ± 0.001 (−7.5 %): slightly below holds at lines 10 % and 15.5 %, fails at 5.7 %."""
    checks = [check("vamp_on_a_par", -0.010, 0.001), check("multinomial_slightly_below", -0.030, 0.001)]
    checks = [replace(c, decision=d) for c, d in zip(checks, decide(checks, PRESET))]
    lines = sensitivity_table(checks, load_claims()).splitlines()
    assert lines[0] == ("| Claim | Dataset | Preset (margin 2 %, line 10 %) | margin 1 % | margin 2 % | margin 3 % "
                        "| line 5.7 % | line 10 % | line 15.5 % | no Holm | Holm over all datasets |")
    assert lines[2] == ("| `vamp_on_a_par` | ml-1m | fails | fails | fails | **holds** | fails | fails | fails "
                        "| fails | fails |")
    assert lines[3] == ("| `multinomial_slightly_below` | ml-1m | holds | holds | holds | holds | **fails** | holds "
                        "| holds | holds | holds |")


def provenance_extra(commit: str | None, dirty: bool | None, precision: str = "32-true") -> dict:
    """metrics.json's `provenance` of a run made by `commit` (dirty or not) at `precision`, as `extra` of write_run."""
    return {"provenance": {"code": {"commit": commit, "dirty": dirty, "version": "0.3.0"}, "torch": "2.13",
                           "lightning": "2.6.6", "python": "3.11", "precision": precision, "device": "cpu"}}


def test_runs_of_different_code_are_listed_and_warned_about(tmp_path: Path):
    """Mult-VAE from commit aaaaaaa (seed 1) and aaaaaaa+dirty (seed 2); SIVAE from bbbbbbb at bf16 and an old run
    without provenance; Multinomial from one clean commit on both seeds."""
    root, out = tmp_path / "sweep", tmp_path / "out"
    rng = np.random.default_rng(0)
    users = {str(i): v for i, v in enumerate(rng.uniform(0.3, 0.5, 50))}
    runs = [("mult_vae", 1, provenance_extra("a" * 40, False)), ("mult_vae", 2, provenance_extra("a" * 40, True)),
            ("sivae", 1, provenance_extra("b" * 40, False, "bf16-mixed")), ("sivae", 2, {}),
            ("multinomial", 1, provenance_extra("c" * 40, False)),
            ("multinomial", 2, provenance_extra("c" * 40, False))]
    for row, seed, extra in runs:
        write_per_user(write_run(root / f"{row}{seed}", dataset="ml-1m-implicit", row=row, seed=seed, extra=extra),
                       {u: v + 0.001 * seed for u, v in users.items()})
    assert main([str(root), "--out", str(out), "--no-plots"]) == 0
    with open(out / "comparisons.csv", newline="") as f:
        codes = {r["row_a"]: (r["code_versions"], r["precisions"], r["libraries"], r["devices"])
                 for r in csv.DictReader(f) if r["metric"] == "ndcg@100"}
    assert codes["sivae"] == ("aaaaaaa;aaaaaaa+dirty;bbbbbbb;unknown", "32-true;bf16-mixed;unknown",
                              "torch 2.13, lightning 2.6.6;unknown", "cpu;unknown")
    with open(out / "claims.csv", newline="") as f:
        claims = {r["claim"]: r for r in csv.DictReader(f)}
    assert ("runs from different code versions (aaaaaaa, aaaaaaa+dirty, bbbbbbb, unknown)"
            in claims["sivae_above"]["caveats"])
    assert "runs at different precisions (32-true, bf16-mixed, unknown)" in claims["sivae_above"]["caveats"]
    # Multinomial's runs share one commit, but Mult-VAE's differ from it and from each other
    assert ("code versions (aaaaaaa, aaaaaaa+dirty, ccccccc)"
            in claims["multinomial_slightly_below"]["caveats"])
    assert "precisions" not in claims["multinomial_slightly_below"]["caveats"]
    md = (out / "report.md").read_text()
    section = md.split("## The paper's claims")[1].split("\n## ")[0]
    notes = section.split("**Provenance.**")[1].split("###")[0]
    assert ("- **ml-1m-implicit, SIVAE above Mult-VAE**: the runs compared come from different code versions "
            "(aaaaaaa, aaaaaaa+dirty, bbbbbbb, unknown) and different precisions (32-true, bf16-mixed, "
            "unknown)") in notes
    # the versions behind the dataset's comparisons, each field's distinct values
    assert ("- ml-1m-implicit: code aaaaaaa, aaaaaaa+dirty, bbbbbbb, ccccccc, unknown; precision 32-true, bf16-mixed, "
            "unknown; libraries torch 2.13, lightning 2.6.6, unknown; device cpu, unknown.") in notes
    assert "1 of the 2 comparisons rest on runs that record no code version" in notes


def test_claims_csv_and_report_carry_the_claim_in_its_own_words_and_the_sensitivity_fragment(tmp_path: Path):
    """Logistic is compared with the KL-free Multinomial (not Mult-VAE) for §4.4's "slightly better" claim."""
    root, out = tmp_path / "sweep", tmp_path / "out"
    rng = np.random.default_rng(2)
    users = {str(i): v for i, v in enumerate(rng.uniform(0.3, 0.5, 80))}
    for row, factor in (("mult_vae", 1.0), ("multinomial", 0.97), ("logistic", 0.99)):
        for seed in (1, 2, 3):
            noise = rng.normal(0, 0.01, len(users))
            write_per_user(write_run(root / f"{row}{seed}", dataset="ml-1m-implicit", row=row, seed=seed),
                           {u: v * factor + e for (u, v), e in zip(users.items(), noise)})
    assert main([str(root), "--out", str(out), "--no-plots"]) == 0
    with open(out / "claims.csv", newline="") as f:
        claims = {r["claim"]: r for r in csv.DictReader(f)}
    better = claims["logistic_better_than_multinomial"]
    assert (better["row"], better["against"], better["relation"], better["section"]) == (
        "logistic", "multinomial", "slightly above", "4.4")
    assert better["paper_figures"] == "ML-20M 0.423 vs 0.418; Netflix 0.386 vs 0.38; MSD 0.315 vs 0.3"
    assert (better["n_seeds_row"], better["n_seeds_against"], better["method"]) == ("3", "3", "seeds+users")
    assert float(better["bound_low"]) == 0 and float(better["bound_high"]) == pytest.approx(0.10)
    assert float(better["p_claim_holm_dataset"]) >= float(better["p_claim"])
    assert better["verdict"] in ("holds", "fails", "inconclusive") and better["equivalence_margin"] == "0.02"
    assert claims["vamp_no_gain"]["verdict"] == "not run"
    with open(out / "comparisons.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["metric"] == "ndcg@100"]
    assert [(r["row_a"], r["row_b"]) for r in rows] == [("logistic", "mult_vae"), ("multinomial", "mult_vae"),
                                                        ("logistic", "multinomial")]
    assert all(float(r["p_holm_dataset"]) >= float(r["p_seed_aware"]) for r in rows)
    md = (out / "report.md").read_text()
    assert "| 4.4 | “We further notice that using the Bernoulli-logistic combination" in md
    assert "| +1.2 % / +1.6 % / +5.0 % | ml-1m-implicit |" in md
    assert "### How the verdicts move with the thresholds" in md
    fragment = (out / "fragments" / "sensitivity_ml-1m-implicit.md").read_text()
    assert fragment.startswith("| Claim | Dataset | Preset") and "`logistic_better_than_multinomial`" in fragment
