"""`python -m cfrec.report` on sweep directories written here with known numbers."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from scipy import stats

from cfrec.report.__main__ import main
from cfrec.report.claims import check_claims, claims
from cfrec.report.collect import Run, collect
from cfrec.report.groups import Group, aggregate
from cfrec.report.hparams import hyperparameters, render, shown_settings
from cfrec.report.paper import load_paper
from cfrec.report.rows import derive_row, row_label
from cfrec.report.tables import build_sections

CLAIMS = claims()  # the claims of conf/claims.yaml

METRICS = ("recall@20", "recall@50", "ndcg@100")


def _summary(r20: float, r50: float, n100: float, se: float = 0.002, n_users: int = 100) -> dict:
    out = {"n_users": n_users}
    for name, v in zip(METRICS, (r20, r50, n100)):
        out[name] = v
        out[f"{name}_se"] = se
    return out


def write_run(path: Path, *, dataset: str = "ml-20m", seed: int = 1, choices: dict | None = None,
              row: str | None = None, test=(0.3, 0.4, 0.35), status: str = "ok", error: str | None = None,
              history: list | None = None, beta_search: dict | None = None, l2: float = 0.0,
              se: float = 0.002, config: dict | None = None, extra: dict | None = None, trained: bool = True) -> Path:
    """A run directory with a metrics.json shaped like cfrec.run.training.run's (`config` and `extra` update its
    config and its top level; `trained=False`: a closed-form fit, without epochs)."""
    path.mkdir(parents=True)
    choices = {"model": "mult", "likelihood": "multinomial", "prior": "standard", "beta": "anneal",
               "dataset": dataset, **(choices or {})}
    if row is not None:
        choices["row"] = row
    config = {"seed": seed, "row": row, "dataset": {"name": dataset}, "model": {"l2": l2}, **(config or {})}
    metrics = {"status": status, "model": choices["model"], "dataset": dataset, "seed": seed, "choices": choices,
               "config": config}
    if status == "ok":
        metrics.update({"train_seconds": 1.0, "val": _summary(*test, se), "test": _summary(*test, se), "best_epoch": 1,
                        "epochs": 3, "history": history or []})
        if beta_search:
            metrics["beta_search"] = beta_search
        if not trained:
            for key in ("best_epoch", "epochs", "history"):
                del metrics[key]
    else:
        metrics.update({"error": error, "traceback": "Traceback (most recent call last):\n  ...\n" + (error or "")})
    metrics.update(extra or {})
    (path / "metrics.json").write_text(json.dumps(metrics))
    return path


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """Table 2 on ML-20M: Mult-VAE with 3 seeds, Multinomial with 1, Logistic failed; plus an incomplete run."""
    root = tmp_path / "sweep"
    hist = [{"epoch": e, "ndcg@100": 0.3 + 0.01 * e} for e in range(3)]
    for i, (seed, r20) in enumerate([(1, 0.30), (2, 0.33), (3, 0.36)]):
        write_run(root / f"{i}_row=mult_vae,seed={seed}", seed=seed, row="mult_vae", test=(r20, 0.50, 0.40),
                  history=hist)
    write_run(root / "3_row=multinomial,seed=1", row="multinomial", choices={"beta": "zero"},
              test=(0.38, 0.52, 0.41))
    write_run(root / "4_row=logistic,seed=1", row="logistic", choices={"likelihood": "logistic", "beta": "zero"},
              status="failed", error="RuntimeError: CUDA out of memory | boom")
    (root / "5_row=logistic,seed=2" / ".hydra").mkdir(parents=True)
    (root / "5_row=logistic,seed=2" / ".hydra" / "config.yaml").write_text(
        "seed: 2\nrow: logistic\ndataset:\n  name: ml-20m\n")
    write_run(tmp_path / "other" / "0", row="beta_search", choices={"beta": "search"},
              beta_search={"beta": [0.1, 0.2, 0.3], "ndcg@100": [0.40, 0.42, 0.41], "best_beta": 0.2})
    return root


def test_paper_csv_holds_tables_2_and_3():
    paper = load_paper()
    t2 = [p for p in paper if p.table == "table2"]
    t3 = [p for p in paper if p.table == "table3"]
    assert len(t2) == 3 * 3 and len(t3) == 9 * 3
    sivae = next(p for p in t3 if p.dataset == "ml-20m" and p.model == "SIVAE")
    assert sivae.values == {"recall@20": 0.400, "recall@50": 0.539, "ndcg@100": 0.430}
    logistic_msd = next(p for p in t2 if p.dataset == "msd" and p.model == "Logistic")
    assert logistic_msd.values == {"recall@20": 0.266, "recall@50": 0.353, "ndcg@100": 0.315}
    slim_msd = next(p for p in t3 if p.dataset == "msd" and p.model == "SLIM")
    assert all(math.isnan(v) for v in slim_msd.values.values())
    assert {p.model for p in paper if p.table == "extended"} == {"EASE", "RecVAE", "Mult-DAE"}
    assert all(p.source for p in paper)


@pytest.mark.parametrize(("choices", "l2", "row"), [
    ({"model": "mult"}, 0.0, "mult_vae"),
    ({"model": "mult", "beta": "zero"}, 0.0, "multinomial"),
    ({"model": "mult", "beta": "zero", "likelihood": "logistic"}, 0.0, "logistic"),
    ({"model": "mult", "prior": "vamp"}, 0.0, "vae_vamp"),
    ({"model": "mult"}, 0.01, "vae_reg"),
    ({"model": "iaf"}, 0.0, "vae_iaf"),
    ({"model": "sivae"}, 0.0, "sivae"),
    ({"model": "dae"}, 2e-5, "mult_dae"),  # conf/model/dae.yaml's l2
    ({"model": "ease"}, 0.0, "ease"),
    ({"model": "mult", "likelihood": "gaussian", "beta": "constant"}, 0.0, "mult[likelihood=gaussian,beta=constant]"),
])
def test_rows_are_derived_from_choices(choices, l2, row):
    full = {"likelihood": "multinomial", "prior": "standard", "beta": "anneal", **choices}
    assert derive_row(full, {"model": {"l2": l2}}) == row
    assert row_label("mult[likelihood=gaussian,beta=constant]") == "VAE (likelihood=gaussian, beta=constant)"


def test_aggregate_mean_and_se(sweep: Path):
    runs = collect([sweep])
    assert sorted(r.status for r in runs) == ["failed", "incomplete", "ok", "ok", "ok", "ok"]
    groups = aggregate(runs)
    vae = groups[("ml-20m", "mult_vae")]
    assert vae.n == 3 and vae.se_kind == "seeds"
    mean, se = vae.value("recall@20")
    assert mean == pytest.approx(0.33)
    assert se == pytest.approx(0.03 / math.sqrt(3))  # sample std of (.30, .33, .36) = .03
    one = groups[("ml-20m", "multinomial")]
    assert one.se_kind == "users" and one.value("recall@20") == pytest.approx((0.38, 0.002))
    assert groups[("ml-20m", "logistic")].failed == 1 and groups[("ml-20m", "logistic")].n == 0


def test_duplicate_seed_keeps_latest(tmp_path: Path):
    import os

    old = write_run(tmp_path / "a", row="mult_vae", test=(0.1, 0.2, 0.3))
    write_run(tmp_path / "b", row="mult_vae", test=(0.2, 0.3, 0.4))
    os.utime(old / "metrics.json", (1, 1))
    group = aggregate(collect([tmp_path]))[("ml-20m", "mult_vae")]
    assert group.n == 1 and group.value("recall@20")[0] == pytest.approx(0.2) and group.notes


def test_sections_follow_the_paper(sweep: Path):
    sections = build_sections(aggregate(collect([sweep])), load_paper())
    assert [(s.table, s.dataset) for s in sections] == [("table2", "ml-20m")]
    lines = sections[0].lines
    assert [ln.label for ln in lines] == ["Mult-VAE", "Multinomial", "Logistic"]
    ours, se, paper, diff = lines[0].cells("recall@20")
    assert paper == 0.395 and diff == pytest.approx(0.33 - 0.395)


def test_cli_writes_markdown_csv_and_plots(sweep: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    assert main([str(sweep), str(tmp_path / "other"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    md = (out / "report.md").read_text()
    assert printed.strip() == md.strip()
    assert "### Table 2: ML-20M" in md
    assert "| Mult-VAE | 3 seeds | 0.3300 ± 0.0173 | 0.395 | -0.0650 |" in md
    assert "| Multinomial | 1 run† | **0.3800 ± 0.0020** | 0.386 | -0.0060 |" in md
    assert "| Logistic | 1 failed, 1 incomplete |" in md
    assert "## Failed runs" in md and "CUDA out of memory \\| boom" in md
    assert "## Incomplete runs" in md and "5_row=logistic,seed=2" in md
    assert "Mult-VAE (β search)" in md  # an "other" row
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    vae = next(r for r in rows if r["table"] == "table2" and r["model"] == "Mult-VAE")
    assert float(vae["recall@20"]) == pytest.approx(0.33)
    assert float(vae["recall@20_se"]) == pytest.approx(0.03 / math.sqrt(3))
    assert float(vae["recall@20_paper"]) == 0.395
    assert float(vae["recall@20_diff"]) == pytest.approx(-0.065)
    assert vae["n_runs"] == "3" and vae["seeds"] == "1 2 3" and vae["se_kind"] == "seeds"
    with open(out / "runs.csv", newline="") as f:
        statuses = sorted(r["status"] for r in csv.DictReader(f))
    assert statuses == ["failed", "incomplete", "ok", "ok", "ok", "ok", "ok"]
    for png in ("val_ndcg_100_ml-20m.png", "beta_search_ml-20m.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


def test_dataset_without_published_numbers(tmp_path: Path):
    write_run(tmp_path / "s" / "0", dataset="synthetic", row="sivae", choices={"model": "sivae"})
    groups = aggregate(collect([tmp_path / "s"]))
    ref = build_sections(groups, load_paper(), reference_dataset="ml-20m")
    assert ref[0].table == "table3" and ref[0].paper_dataset == "ml-20m"
    assert "for reference only" in ref[0].title
    assert next(ln for ln in ref[0].lines if ln.label == "SIVAE").cells("ndcg@100")[2] == 0.430
    bare = build_sections(groups, load_paper())  # by default no reference dataset: the paper columns stay empty
    assert bare[0].paper_dataset is None and math.isnan(bare[0].lines[-1].cells("ndcg@100")[2])
    assert main([str(tmp_path / "s"), "--no-plots"]) == 0
    assert "(no published numbers)" in (tmp_path / "s" / "report" / "report.md").read_text()
    assert main([str(tmp_path / "s"), "--reference-dataset", "ml-20m", "--no-plots"]) == 0
    assert "for reference only" in (tmp_path / "s" / "report" / "report.md").read_text()


def test_no_runs_is_an_error(tmp_path: Path):
    assert main([str(tmp_path), "--no-plots"]) == 2
    assert main([str(tmp_path / "missing")]) == 2


@pytest.fixture
def claims_sweep(tmp_path: Path) -> Path:
    """Runs without per-user files, NDCG@100 chosen by hand (SE 0.002 per user unless given).

    ML-20M: Mult-VAE 0.40/0.41/0.42 (mean 0.41, seed variance 1e-4); Multinomial 0.385/0.395 (Δ = −0.020);
    VAE+IAF 0.385 (one run); VAE+Reg 0.30; SIVAE 0.412; Logistic failed; no VAE+Vamp. ML-1M: single runs, Mult-VAE
    0.40 ± 0.003 and the others ± 0.004 (SE of Δ 0.005), the models 0.0099–0.0101 either side of Mult-VAE.
    Netflix: SIVAE without Mult-VAE. CiteULike: EASE only (no claim).
    """
    root = tmp_path / "claims"
    for seed, n100 in [(1, 0.40), (2, 0.41), (3, 0.42)]:
        write_run(root / f"ml20_vae_{seed}", seed=seed, row="mult_vae", test=(0.3, 0.4, n100))
    for seed, n100 in [(1, 0.385), (2, 0.395)]:
        write_run(root / f"ml20_multinomial_{seed}", seed=seed, row="multinomial", test=(0.3, 0.4, n100))
    for row, n100 in [("vae_iaf", 0.385), ("vae_reg", 0.30), ("sivae", 0.412)]:
        write_run(root / f"ml20_{row}", row=row, test=(0.3, 0.4, n100))
    write_run(root / "ml20_logistic", row="logistic", status="failed", error="boom")
    ml1m = "ml-1m-implicit"
    write_run(root / "ml1m_vae", dataset=ml1m, row="mult_vae", test=(0.3, 0.4, 0.40), se=0.003)
    for row, n100 in [("sivae", 0.4101), ("vae_vamp", 0.4099), ("logistic", 0.3899), ("multinomial", 0.3901)]:
        write_run(root / f"ml1m_{row}", dataset=ml1m, row=row, test=(0.3, 0.4, n100), se=0.004)
    write_run(root / "netflix_sivae", dataset="netflix", row="sivae", test=(0.3, 0.4, 0.45))
    write_run(root / "citeulike_ease", dataset="citeulike-a", row="ease", choices={"model": "ease"})
    return root


def test_claims_without_per_user_files_fall_back_to_the_runs_means(claims_sweep: Path):
    checks = check_claims(aggregate(collect([claims_sweep])))
    by = {(c.dataset, c.claim.id): c for c in checks}
    assert [c.dataset for c in checks[::len(CLAIMS)]] == ["ml-20m", "netflix", "ml-1m-implicit"]
    not_run = {key for key, c in by.items() if c.verdict == "not run"}
    assert not_run == ({("netflix", c.id) for c in CLAIMS} | {("ml-20m", i) for i in (
        "kl_free_close_logistic", "logistic_better_than_multinomial", "vamp_no_gain", "vamp_on_a_par")}
        | {("ml-1m-implicit", i) for i in ("iaf_no_gain", "iaf_slightly_below", "reg_severely_below")})
    assert all(c.verdict in ("holds", "fails", "inconclusive") for key, c in by.items() if key not in not_run)
    # ML-20M Multinomial (2 seeds) vs Mult-VAE (3 seeds): Welch over the runs' means
    multinomial = by[("ml-20m", "multinomial_slightly_below")]
    welch = stats.ttest_ind([0.385, 0.395], [0.40, 0.41, 0.42], equal_var=False)
    assert multinomial.method == "seed means (no per-user files)"
    assert multinomial.estimate.diff == pytest.approx(-0.02) and multinomial.estimate.p == pytest.approx(welch.pvalue)
    assert multinomial.relative == pytest.approx(-0.02 / 0.41)
    # VAE+IAF, one run, vs Mult-VAE's 3 seeds: Mult-VAE's seed variance (1e-4) stands in for VAE+IAF's
    iaf = by[("ml-20m", "iaf_slightly_below")]
    assert iaf.estimate.se == pytest.approx(math.sqrt(1e-4 * (1 + 1 / 3))) and iaf.estimate.df == 2
    assert "seed variance of VAE+IAF (1 seed) taken from the other row" in iaf.caveats
    # ML-1M: one run each, so their per-user SEs 0.004 and 0.003; SIVAE +0.0101 is one-sided p 0.022 above 0
    sivae = by[("ml-1m-implicit", "sivae_above")]
    assert sivae.estimate.se == pytest.approx(0.005) and sivae.estimate.df == math.inf
    assert sivae.decision.p_claim == pytest.approx(stats.norm.sf(0.0101 / 0.005))
    assert sivae.decision.p_claim_holm > 0.05 and sivae.verdict == "inconclusive"  # Holm over ML-1M's 7 claims
    assert "1 seed each: users only, seed variance not in the CI" in sivae.caveats


def test_claim_without_per_user_se():
    def group(row: str, test: dict) -> Group:
        return Group("ml-20m", row, [Run(Path(row), "ok", "ml-20m", row, 1, {"test": test})])

    groups = {("ml-20m", "sivae"): group("sivae", {"ndcg@100": 0.5}),
              ("ml-20m", "mult_vae"): group("mult_vae", {"ndcg@100": 0.4, "ndcg@100_se": 0.002})}
    check = next(c for c in check_claims(groups) if c.claim.id == "sivae_above")
    assert check.estimate.diff == pytest.approx(0.1) and check.verdict == "no SE"


def test_cli_writes_claims(claims_sweep: Path, tmp_path: Path):
    out = tmp_path / "out"
    assert main([str(claims_sweep), "--out", str(out), "--no-plots"]) == 0
    md = (out / "report.md").read_text()
    assert md.index("### Table 3: ML-20M") < md.index("## The paper's claims") < md.index("## Failed runs")
    section = md.split("## The paper's claims")[1].split("\n## ")[0]
    lines = {line.split(" | ")[0] + " | " + line.split(" | ")[4]: line for line in section.splitlines()
             if line.startswith("| `")}
    # no per_user.csv in these runs: the means of the runs, no users-only tests, and the paper's figures
    assert lines["| `multinomial_slightly_below`: Multinomial slightly below Mult-VAE *(cfrec's reading of "
                 "`kl_free_close_multinomial`)* | ML-20M"].endswith(
        "| -1.9 % / -1.6 % / -5.1 % | ML-20M | 0.3900 (2 seeds) vs 0.4100 (3 seeds) | -0.0200 (-4.9 %) "
        "| [-0.0449, +0.0049] | 0.082 | 0.041 → 0.206 | – | inconclusive | **inconclusive** | – |")
    assert lines["| `vamp_no_gain`: VAE+Vamp not above Mult-VAE | ML-20M"].endswith(
        "| ML-20M | – (not run) vs 0.4100 (3 seeds) | – | – | – | – → – | – | – | not run | – |")
    assert "| `kl_free_close_logistic`: Logistic on a par with Mult-VAE | 4.4 |" in section
    assert "| ML-20M | – (1 failed) vs 0.4100 (3 seeds) |" in section
    assert "| Netflix | 0.4500 (1 run†) vs – (not run) |" in section
    assert "CiteULike" not in section and "citeulike" not in section
    assert "### How the verdicts move with the thresholds" in section
    with open(out / "claims.csv", newline="") as f:
        rows = {(r["dataset"], r["claim"]): r for r in csv.DictReader(f)}
    assert len(rows) == 3 * len(CLAIMS)
    multinomial = rows[("ml-20m", "multinomial_slightly_below")]
    assert (multinomial["relation"], multinomial["verdict"], multinomial["method"]) == (
        "slightly below", "inconclusive", "seed means (no per-user files)")
    assert (multinomial["n_seeds_row"], multinomial["n_seeds_against"], multinomial["n_users"]) == ("2", "3", "")
    assert float(multinomial["mean_against"]) == pytest.approx(0.41) and float(multinomial["diff"]) == pytest.approx(
        -0.02)
    assert multinomial["p_ttest_users"] == "" and multinomial["code_versions"] == "unknown"
    vamp = rows[("ml-20m", "vamp_no_gain")]
    assert vamp["verdict"] == "not run" and vamp["diff"] == "" and vamp["p_claim"] == ""


VAE_MODEL = {"_target_": "cfrec.models.vae.VAE", "n_items": 100,
             "encoder": {"_partial_": True, "_target_": "cfrec.models.encoders.GaussianEncoder", "dropout": 0.5,
                         "hidden_dims": [600], "latent_dim": 200},
             "beta": {"_target_": "cfrec.models.schedules.Anneal", "anneal_fraction": None, "cap": 0.2}, "l2": 0.0}


@pytest.fixture
def hp_sweep(tmp_path: Path) -> Path:
    """ML-20M: Mult-VAE with 2 seeds differing only in model.lr (and the seed-derived shuffle_seed), a
    closed-form EASE that picked λ = 100, a failed SIVAE."""
    root = tmp_path / "hp"
    trainer = {"max_epochs": 100, "precision": "32-true"}
    for seed, lr, seconds, best in [(1, 0.001, 100.0, 81), (2, 0.0005, 300.0, 77)]:
        write_run(root / f"vae_{seed}", seed=seed, row="mult_vae",
                  config={"model": {**VAE_MODEL, "lr": lr}, "trainer": trainer,
                          "dataset": {"name": "ml-20m", "batch_size": 500, "shuffle_seed": seed}},
                  extra={"train_seconds": seconds, "best_epoch": best})
    ease = {"_target_": "cfrec.models.baselines.EASE", "lambdas": [50, 100], "device": "auto", "eval_batch_size": 2000}
    write_run(root / "ease", row="ease", choices={"model": "ease"}, trained=False,
              config={"model": ease, "trainer": trainer, "dataset": {"name": "ml-20m", "batch_size": 500}},
              extra={"train_seconds": 0.311, "chosen": {"lambda": 100.0, "val_ndcg@100_by_lambda": {"50": 0.4}}})
    write_run(root / "sivae", row="sivae", status="failed", error="boom")
    return root


def test_hyperparameters_flatten_and_render():
    config = {"_target_": "m.VAE", "_partial_": True, "n_items": 10, "n_users": None, "device": "auto",
              "prior": {"_target_": "p.VampPrior", "n_components": 5, "flow": {"_target_": "f.Flow", "depth": 2}},
              "optim": {"momentum": 0.9, "nesterov": True}, "dropout": None, "dims": [100, 100]}
    flat = shown_settings(config)
    assert flat == {"prior": "VampPrior", "prior.n_components": "5", "prior.flow": "Flow", "prior.flow.depth": "2",
                    "optim.momentum": "0.9", "optim.nesterov": "true", "dims": "[100,100]"}
    assert render(flat) == ("prior=VampPrior(n_components=5 flow=Flow(depth=2)) optim.momentum=0.9 "
                            "optim.nesterov=true dims=[100,100]")
    runs = [Run(Path(str(i)), "ok", "ml-20m", "mult_vae", i, {"config": {"model": model}})
            for i, model in enumerate([{"lr": 0.001, "wd": 0.1}, {"lr": 0.001}, {"lr": 0.01, "wd": 0.1}])]
    assert hyperparameters(Group("ml-20m", "mult_vae", runs)) == "lr=0.001|0.01 wd=0.1|–"


def test_cli_writes_hyperparameters_and_time(hp_sweep: Path, tmp_path: Path):
    out = tmp_path / "out"
    assert main([str(hp_sweep), "--out", str(out), "--no-plots"]) == 0
    md = (out / "report.md").read_text()
    assert md.index("## The paper's claims") < md.index("## Hyperparameters and time per row") < md.index(
        "## Failed runs")
    section = md.split("## Hyperparameters and time per row")[1].split("\n## ")[0]
    assert ("| Dataset | Model | Runs (seeds) | Epochs | Best epoch(s) | Fit time per run (s) | Precision "
            "| Hyperparameters |") in section
    assert ("| ML-20M | Mult-VAE | 2 (1, 2) | 100 | 82, 78 | 200 (100–300) | 32-true | encoder=GaussianEncoder("
            "dropout=0.5 hidden_dims=[600] latent_dim=200) beta=Anneal(cap=0.2) l2=0 lr=0.001\\|0.0005 "
            "batch_size=500 |") in section
    assert "| ML-20M | EASE | 1 (1) | – | – | 0.3 | – | lambdas=[50,100] chosen.lambda=100 |" in section
    assert "SIVAE" not in section  # no successful run: listed under Failed runs only
    with open(out / "hyperparameters.csv", newline="") as f:
        rows = {r["row"]: r for r in csv.DictReader(f)}
    assert list(rows) == ["mult_vae", "ease"]
    vae, ease = rows["mult_vae"], rows["ease"]
    assert (vae["model"], vae["n_runs"], vae["seeds"], vae["epochs"], vae["best_epochs"], vae["precision"]) == (
        "Mult-VAE", "2", "1 2", "100", "81 77", "32-true")
    assert [float(vae[k]) for k in ("fit_seconds", "fit_seconds_min", "fit_seconds_max")] == [200.0, 100.0, 300.0]
    assert vae["hyperparameters"] == ("encoder=GaussianEncoder(dropout=0.5 hidden_dims=[600] latent_dim=200) "
                                      "beta=Anneal(cap=0.2) l2=0 lr=0.001|0.0005 batch_size=500")
    assert (ease["epochs"], ease["best_epochs"], ease["precision"], float(ease["fit_seconds"])) == ("", "", "", 0.311)
    assert ease["hyperparameters"] == "lambdas=[50,100] chosen.lambda=100"
