"""The rows' one home, conf/row/<name>.yaml: what the row files give the report, the errors a malformed one raises,
and a row file copied under a new name running one tiny epoch and reaching the report."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pytest

from cfrec.report import rows as row_files
from cfrec.report.__main__ import main
from cfrec.report.rows import ROW_DIR, load_row, row_order, rows
from cfrec.training import run
from tests.conftest import TINY_MODEL, compose_train, row_model

# the report's rows in its order, with their labels (Table 2, Table 3, the extended baselines, the β search)
EXPECTED = {
    "mult_vae": "Mult-VAE", "multinomial": "Multinomial", "logistic": "Logistic", "wmf": "WMF", "slim": "SLIM",
    "cdae": "CDAE", "awae": "aWAE", "vae_vamp": "VAE+Vamp", "vae_iaf": "VAE+IAF", "vae_reg": "VAE+Reg",
    "sivae": "SIVAE", "ease": "EASE", "mult_dae": "Mult-DAE", "recvae": "RecVAE", "popularity": "Popularity",
    "beta_search": "Mult-VAE (β search)",
}


def test_row_files_give_labels_and_order():
    assert {name: row.label for name, row in rows().items()} == EXPECTED
    assert list(rows()) == list(EXPECTED)  # the paper's order (paper.csv), then rows outside its tables
    assert row_order("zzz_not_a_row") > row_order("beta_search") > row_order("mult_vae")
    reg = rows()["vae_reg"]
    assert (reg.model, reg.parts, reg.settings) == ("mult", {"likelihood": "multinomial", "prior": "standard",
                                                             "beta": "anneal"}, {"l2": "0.01"})


@pytest.mark.parametrize(("old", "new", "message"), [
    ("row: vae_vamp_copy", "row: vae_vamp", "must be the file's name"),  # a copy that kept the original's name
    ("tables: [table3]", "tables: [table9]", "unknown ['table9']"),
    # the claims live in conf/claims.yaml: a row file still carrying one is told so, not silently ignored
    ("tables: [table3]", "tables: [table3]\n  claim: {relation: on a par}", "the claims are in conf/claims.yaml"),
])
def test_a_malformed_row_file_is_an_error(tmp_path: Path, old: str, new: str, message: str):
    text = (ROW_DIR / "vae_vamp.yaml").read_text().replace("row: vae_vamp", "row: vae_vamp_copy")
    assert old in text
    path = tmp_path / "vae_vamp_copy.yaml"
    path.write_text(text.replace(old, new))
    with pytest.raises(ValueError, match=re.escape(message)):
        load_row(path)


@pytest.fixture
def copied_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config directory holding the row files and vae_vamp.yaml copied as vae_vamp10.yaml (its row name and label
    changed, M = 10 pseudo-inputs): what copying a row file in conf/row does, without touching the checkout."""
    row_dir = tmp_path / "conf" / "row"
    shutil.copytree(ROW_DIR, row_dir)
    text = (ROW_DIR / "vae_vamp.yaml").read_text()
    text = text.replace("row: vae_vamp", "row: vae_vamp10").replace("label: VAE+Vamp", "label: VAE+Vamp (M = 10)")
    (row_dir / "vae_vamp10.yaml").write_text(text + "prior:\n  n_components: 10\n")
    monkeypatch.setattr(row_files, "ROW_DIR", row_dir)
    return row_dir.parent


def test_a_copied_row_file_runs_and_reaches_the_report(copied_row: Path, tmp_path: Path):
    overrides = ["+row=vae_vamp10", f"hydra.searchpath=[file://{copied_row}]", *TINY_MODEL[row_model("vae_vamp")],
                 "trainer.max_epochs=1"]
    choices = dict(compose_train(*overrides, hydra=True).hydra.runtime.choices)
    out = tmp_path / "sweep" / "0_vae_vamp10"
    cfg = compose_train(*overrides, out=out, cache=tmp_path / "cache")
    assert cfg.prior.n_components == 10 and cfg.report.label == "VAE+Vamp (M = 10)"
    assert run(cfg, out, choices)["status"] == "ok"

    report = tmp_path / "report"
    assert main([str(tmp_path / "sweep"), "--out", str(report), "--no-plots"]) == 0
    md = (report / "report.md").read_text()
    assert "| VAE+Vamp (M = 10) | 1 run† |" in md.split("### Other models: synthetic")[1]
    assert "## The paper's claims" not in md  # a copied row makes no claim: the claims are conf/claims.yaml's
    assert "read as" not in md  # its choices read as itself, not as vae_vamp
    with open(report / "results.csv", newline="") as f:
        [line] = [r for r in csv.DictReader(f) if r["row"] == "vae_vamp10"]
    assert line["model"] == "VAE+Vamp (M = 10)" and line["n_runs"] == "1"
