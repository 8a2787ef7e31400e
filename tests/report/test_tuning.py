"""A row's setting is chosen among its grid points (`tune=...`) on validation users, never on test users."""

from __future__ import annotations

import csv
from pathlib import Path

from cfrec.report.__main__ import main
from cfrec.report.collect import collect, grid_point
from cfrec.report.groups import aggregate
from cfrec.report.tuning import choose_settings
from tests.report.test_report import _summary, write_run


def _reg(root: Path, l2: float, val: float, test: float, tune: bool = True) -> None:
    write_run(root / f"reg_{l2:g}", dataset="ml-1m-implicit", row="vae_reg", l2=l2, test=(test, test, test),
              config={"tune": "model.l2"} if tune else None, extra={"val": _summary(val, val, val, 0.002)})


def test_grid_point_names_each_tuned_key_by_its_value():
    config = {"model": {"l2": 0.001, "prior": {"n_components": 50}}}
    assert grid_point(config, ("model.l2", "model.prior.n_components")) == "l2=0.001,n_components=50"


def test_the_setting_with_the_best_validation_ndcg_is_chosen_whatever_the_test_users_say(tmp_path: Path):
    root = tmp_path / "sweep"
    write_run(root / "vae", dataset="ml-1m-implicit", row="mult_vae", test=(0.4, 0.4, 0.4))
    _reg(root, 0.01, val=0.40, test=0.38, tune=False)  # the preset's setting: the row itself
    _reg(root, 0.001, val=0.43, test=0.39)  # best on validation
    _reg(root, 0.0001, val=0.42, test=0.45)  # best on test: must not be chosen
    candidates = choose_settings(aggregate(collect([root])))
    assert [(c.candidate, c.chosen) for c in candidates] == [
        ("vae_reg", False), ("vae_reg[l2=0.0001]", False), ("vae_reg[l2=0.001]", True)]
    assert candidates[2].val_ndcg == 0.43 and candidates[0].row == "vae_reg" and candidates[0].diagnostics == ""

    out = tmp_path / "report"
    assert main([str(root), "--out", str(out), "--no-plots"]) == 0
    rows = list(csv.DictReader((out / "tuning.csv").open()))
    assert [(r["candidate"], r["chosen"]) for r in rows] == [
        ("vae_reg", "False"), ("vae_reg[l2=0.0001]", "False"), ("vae_reg[l2=0.001]", "True")]
    report = (out / "report.md").read_text()
    assert "## Settings chosen on validation" in report and "a command-line override?" not in report


def test_a_models_own_validation_diagnostics_ride_along(tmp_path: Path):
    root = tmp_path / "sweep"
    for k, spread in ((1, 0.08), (20, 0.12)):
        val = {**_summary(0.4, 0.4, 0.4, 0.002), "psi_spread": spread}
        write_run(root / f"sivae{k}", dataset="ml-1m-implicit", row="sivae", choices={"model": "sivae"},
                  config={"tune": "model.encoder.extra_psi", "model": {"encoder": {"extra_psi": k}}} if k > 1 else None,
                  extra={"val": val})
    assert [(c.candidate, c.diagnostics) for c in choose_settings(aggregate(collect([root])))] == [
        ("sivae", "psi_spread=0.08"), ("sivae[extra_psi=20]", "psi_spread=0.12")]


def test_no_grid_no_section(tmp_path: Path):
    root = tmp_path / "sweep"
    write_run(root / "vae", dataset="ml-1m-implicit", row="mult_vae")
    _reg(root, 0.01, val=0.40, test=0.38, tune=False)
    assert choose_settings(aggregate(collect([root]))) == []
