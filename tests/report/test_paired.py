"""Paired comparisons of rows on the same users (`cfrec.report.paired`): the seed-aware test on per-user files, the
users-only tests beside it, Holm over the claims family, and the claim verdicts they decide."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from cfrec.report.__main__ import main
from cfrec.report.claims import check_claims
from cfrec.report.collect import collect
from cfrec.report.groups import aggregate
from cfrec.report.paired import compare, paired_test
from cfrec.report.stats import SEEDS_AND_USERS
from cfrec.run.per_user import COLUMNS
from tests.report.test_report import write_run


def test_paired_test_equals_scipy_and_a_hand_computed_t_interval():
    a = np.array([0.50, 0.40, 0.30, 0.60, 0.20])
    b = np.array([0.45, 0.42, 0.20, 0.50, 0.21])
    diff, low, high, p_t, p_w = paired_test(a, b)
    d = a - b  # 0.05, -0.02, 0.10, 0.10, -0.01: mean 0.044, sd 0.05639...
    sd = math.sqrt(sum((x - 0.044) ** 2 for x in d) / 4)
    assert diff == pytest.approx(0.044)
    assert (low, high) == pytest.approx((0.044 - 2.7764451 * sd / math.sqrt(5), 0.044 + 2.7764451 * sd / math.sqrt(5)))
    t = 0.044 / (sd / math.sqrt(5))
    assert p_t == pytest.approx(2 * stats.t.sf(t, 4)) and p_t == stats.ttest_rel(a, b).pvalue
    assert p_w == stats.wilcoxon(a, b).pvalue == pytest.approx(0.3125)  # exact: ranks 3,2,4.5,4.5,1 → W− = 3


def test_identical_rows_are_on_a_par_with_p_one():
    a = np.array([0.1, 0.2, 0.3])
    assert paired_test(a, a.copy()) == (0.0, 0.0, 0.0, 1.0, 1.0)


def write_per_user(run: Path, values: dict[str, float], val: dict[str, float] | None = None) -> None:
    """per_user.csv with NDCG@100 (and both recalls) = the given value per user id."""
    lines = [",".join(COLUMNS)]
    for split, per in (("val", val or values), ("test", values)):
        lines += [f"{split},{user},{v},{v},{v}" for user, v in per.items()]
    (run / "per_user.csv").write_text("\n".join(lines) + "\n")


def test_users_pair_by_id_and_seeds_enter_the_seed_aware_variance(tmp_path: Path):
    root = tmp_path / "sweep"
    users = [f"u{i}" for i in range(30)]
    rng = np.random.default_rng(0)
    base = dict(zip(users, rng.uniform(0.2, 0.6, 30)))
    for seed, shift in ((1, 0.0), (2, 0.02)):
        write_per_user(write_run(root / f"vae{seed}", dataset="ml-1m-implicit", seed=seed, row="mult_vae"),
                       {u: base[u] + shift for u in reversed(users)})  # another order than the other row
    # SIVAE: user i is 0.01 + 0.001·(i − 14.5)/14.5 above the seeds' mean of Mult-VAE, on 2 seeds that differ
    # by ±0.005; the paired mean difference is exactly 0.01
    lift = {u: 0.01 + 0.001 * (i - 14.5) / 14.5 for i, u in enumerate(users)}
    for seed, shift in ((1, 0.005), (2, 0.015)):
        write_per_user(write_run(root / f"sivae{seed}", dataset="ml-1m-implicit", seed=seed, row="sivae"),
                       {u: base[u] + lift[u] + shift for u in users})
    comparisons = compare(aggregate(collect([root])))
    ndcg = next(c for c in comparisons if c.metric == "ndcg@100")
    assert (ndcg.row_a, ndcg.row_b, ndcg.n_users, ndcg.n_seeds_a, ndcg.n_seeds_b) == ("sivae", "mult_vae", 30, 2, 2)
    # users only: each user's value averaged over seeds, so the seeds' spread is invisible
    assert ndcg.diff == pytest.approx(0.01) and ndcg.ci_low < 0.01 < ndcg.ci_high and ndcg.ci_high - ndcg.ci_low < 1e-3
    assert ndcg.p_ttest < 1e-6 and ndcg.p_wilcoxon < 1e-6
    # seed-aware: seed means 0.02 apart on Mult-VAE (variance 2e-4) and 0.01 on SIVAE (5e-5), each over 2 seeds;
    # no seed × user noise (the seeds shift every user alike), so the user term is var(lift)/30
    user_term = np.var(list(lift.values()), ddof=1) / 30
    assert ndcg.seed_aware_method == SEEDS_AND_USERS
    assert ndcg.seed_aware_se == pytest.approx(math.sqrt(2e-4 / 2 + 5e-5 / 2 + user_term), rel=1e-6)
    assert ndcg.seed_aware_df == pytest.approx((1e-4 + 2.5e-5 + user_term) ** 2
                                               / (1e-4 ** 2 + 2.5e-5 ** 2 + user_term ** 2 / 29), rel=1e-6)
    assert ndcg.seed_aware_ci_low < 0 < ndcg.seed_aware_ci_high and ndcg.p_seed_aware > 0.05
    check = next(c for c in check_claims(aggregate(collect([root])), comparisons) if c.claim.id == "sivae_above")
    assert (check.method, check.verdict, check.caveats) == (SEEDS_AND_USERS, "inconclusive", [])


def test_claims_verdicts_follow_the_seed_aware_tests(tmp_path: Path):
    """Three seeds a row on 200 users, seed effects 0.002: Multinomial −3 % (slightly below), VAE+Reg −20 % (far
    below), VAE+Vamp noise around Mult-VAE (on a par within 2 %)."""
    root = tmp_path / "sweep"
    rng = np.random.default_rng(1)
    users = [str(i) for i in range(200)]
    ref = dict(zip(users, rng.uniform(0.3, 0.5, 200)))
    for seed in (1, 2, 3):
        for row, factor in (("mult_vae", 1.0), ("multinomial", 0.97), ("vae_reg", 0.80), ("vae_vamp", 1.0)):
            shift, noise = rng.normal(0, 0.002), rng.normal(0, 0.02, 200)
            write_per_user(write_run(root / f"{row}{seed}", row=row, seed=seed),
                           {u: v * factor + shift + e for (u, v), e in zip(ref.items(), noise)})
    out = tmp_path / "out"
    assert main([str(root), "--out", str(out), "--no-plots"]) == 0
    with open(out / "claims.csv", newline="") as f:
        claims = {r["claim"]: r for r in csv.DictReader(f) if r["dataset"] == "ml-20m"}
    assert claims["multinomial_slightly_below"]["verdict"] == "holds"
    assert claims["reg_severely_below"]["verdict"] == "holds"
    assert (claims["vamp_on_a_par"]["verdict"], claims["vamp_on_a_par"]["equivalence"]) == ("holds", "equivalent")
    assert claims["vamp_no_gain"]["verdict"] == "holds" and claims["sivae_above"]["verdict"] == "not run"
    assert claims["vamp_on_a_par"]["method"] == "seeds+users" and claims["vamp_on_a_par"]["caveats"] == ""
    with open(out / "comparisons.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:14] == ["dataset", "row_a", "row_b", "metric", "n_users", "n_seeds_a", "n_seeds_b", "mean_a",
                                  "mean_b", "diff", "ci_low", "ci_high", "p_ttest", "p_wilcoxon"]
    assert {"seed_aware_ci_low", "seed_aware_ci_high", "p_seed_aware", "p_holm_dataset", "p_holm_all",
            "equivalence_margin", "p_tost", "equivalence", "code_versions", "precisions"} <= set(rows[0])
    assert {(r["row_a"], r["metric"]) for r in rows} == {(row, m) for row in ("multinomial", "vae_reg", "vae_vamp")
                                                        for m in ("recall@20", "recall@50", "ndcg@100")}
    vamp = next(r for r in rows if r["row_a"] == "vae_vamp" and r["metric"] == "ndcg@100")
    assert float(vamp["mean_b"]) == pytest.approx(np.mean([float(r) for r in ref.values()]), abs=0.01)
    assert vamp["code_versions"] == "unknown" and vamp["precisions"] == "unknown"  # runs without provenance
    # Holm on the claims family only: NDCG@100 of the pairs claims compare; the recalls stay blank
    recall = next(r for r in rows if r["row_a"] == "vae_vamp" and r["metric"] == "recall@20")
    assert recall["p_holm_dataset"] == "" and float(vamp["p_holm_dataset"]) >= float(vamp["p_seed_aware"])
    ndcg = sorted((float(r["p_seed_aware"]), float(r["p_holm_dataset"])) for r in rows if r["metric"] == "ndcg@100")
    expected = np.minimum(1, np.maximum.accumulate([3 * ndcg[0][0], 2 * ndcg[1][0], ndcg[2][0]]))
    assert [adjusted for _, adjusted in ndcg] == pytest.approx(list(expected))  # Holm over the 3 pairs, by hand
    assert "| Users only: p t / Wilcoxon |" in (out / "report.md").read_text()


def test_a_controlled_variant_is_a_row_of_its_own_compared_with_mult_vae(tmp_path: Path):
    root = tmp_path / "sweep"
    users = {str(i): 0.3 + 0.001 * i for i in range(40)}
    write_per_user(write_run(root / "vae", row="mult_vae"), users)
    write_per_user(write_run(root / "logistic", row="logistic"), {u: v - 0.1 for u, v in users.items()})
    write_per_user(write_run(root / "bias", row="logistic", config={"variant": "bias_init"}),
                   {u: v + 0.002 + 0.0001 * (int(u) % 3) for u, v in users.items()})
    runs = collect([root])
    assert sorted(r.row for r in runs) == ["logistic", "logistic[bias_init]", "mult_vae"]
    assert next(r.label for r in runs if r.row == "logistic[bias_init]") == "Logistic [bias_init]"
    rows = {c.row_a: c for c in compare(aggregate(runs)) if c.metric == "ndcg@100"}
    assert rows["logistic[bias_init]"].diff > 0 > rows["logistic"].diff


def test_controlled_variants_are_also_compared_like_for_like(tmp_path: Path):
    """The same variant in both arms: logistic[bias_init] against mult_vae[bias_init] and, for the claim that
    compares Logistic with Multinomial, multinomial[bias_init]; outside Holm's family."""
    root = tmp_path / "sweep"
    users = {str(i): 0.3 + 0.001 * i for i in range(40)}
    for row, lift in (("mult_vae", 0.0), ("multinomial", -0.01), ("logistic", -0.1)):
        write_per_user(write_run(root / row, row=row), {u: v + lift for u, v in users.items()})
        write_per_user(write_run(root / f"{row}_bias", row=row, config={"variant": "bias_init"}),
                       {u: v + lift / 10 + 0.0001 * (int(u) % 3) for u, v in users.items()})
    pairs = {(c.row_a, c.row_b): c for c in compare(aggregate(collect([root]))) if c.metric == "ndcg@100"}
    assert set(pairs) == {("logistic", "mult_vae"), ("multinomial", "mult_vae"), ("logistic", "multinomial"),
                          ("logistic[bias_init]", "mult_vae"), ("multinomial[bias_init]", "mult_vae"),
                          ("mult_vae[bias_init]", "mult_vae"), ("logistic[bias_init]", "mult_vae[bias_init]"),
                          ("multinomial[bias_init]", "mult_vae[bias_init]"),
                          ("logistic[bias_init]", "multinomial[bias_init]")}
    assert pairs[("logistic[bias_init]", "mult_vae[bias_init]")].diff == pytest.approx(-0.01)
    assert pairs[("logistic[bias_init]", "multinomial[bias_init]")].diff == pytest.approx(-0.009)
    assert math.isnan(pairs[("logistic[bias_init]", "multinomial[bias_init]")].p_holm_dataset)
    assert not math.isnan(pairs[("logistic", "multinomial")].p_holm_dataset)
