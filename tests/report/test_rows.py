"""The rows' one home, conf/row/<name>.yaml: what every row file gives the report (checked for each file, not from a
list kept here), the errors a malformed one raises, docs/running.md's copy-a-row recipe followed to the letter, and
runs of different settings never pooled as seeds of one row."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from cfrec.config import CONFIG_DIR
from cfrec.report import rows as row_files
from cfrec.report.__main__ import main
from cfrec.report.claimset import load_claims
from cfrec.report.collect import collect, load_run
from cfrec.report.groups import aggregate
from cfrec.report.paper import load_paper
from cfrec.report.rows import NODES, ROW_DIR, TABLES, derive_row, load_row, row_label, row_order, rows, table_rows
from cfrec.run.training import run
from tests.conftest import TINY_MODEL, row_model
from tests.report.test_paired import write_per_user
from tests.report.test_report import write_run

ROW_FILES = sorted(p.stem for p in ROW_DIR.glob("*.yaml"))
USERS = {f"u{i}": 0.3 + 0.01 * i for i in range(12)}


def _compose(config_dir: Path, *overrides: str) -> DictConfig:
    """`train.yaml` of `config_dir` composed with `overrides`, with its Hydra node (the group choices)."""
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def _recorded(cfg: DictConfig) -> tuple[dict, dict]:
    """(choices, config) of a composed run as its metrics.json records them: the group choices, and the nodes that
    make its model resolved, with its `row` and `report` nodes."""
    config = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in NODES}
    shown = OmegaConf.to_container(cfg.report) if cfg.report is not None else None
    return dict(cfg.hydra.runtime.choices), {**config, "row": cfg.row, "report": shown}


def _write(path: Path, cfg: DictConfig, seed: int, lift: float = 0.0) -> None:
    """A finished run of `cfg` (metrics.json and per_user.csv), as the report reads it; its test metrics and each
    user's are `lift` above the others'."""
    choices, config = _recorded(cfg)
    test = (0.3 + lift, 0.4 + lift, 0.35 + lift)
    write_per_user(write_run(path, seed=seed, row=cfg.row, choices=choices, config=config, test=test),
                   {u: v + lift for u, v in USERS.items()})


# ------------------------------------------------------------------------------------ every row file

@pytest.mark.parametrize("name", ROW_FILES)
def test_every_row_file_carries_its_own_label_and_known_tables(name: str):
    row = rows()[name]
    assert row.label and row.label != name  # a `report.label` of its own, not the file name it falls back to
    assert row.tables == tuple(dict.fromkeys(row.tables)) and set(row.tables) <= set(TABLES)
    assert all(name in table_rows(table) for table in row.tables)  # the presets sweep the tables it names
    assert [r for r in rows() if row_label(r) == row.label] == [name]


@pytest.mark.parametrize("name", ROW_FILES)
def test_every_row_file_reads_back_as_itself_through_the_report(tmp_path: Path, name: str):
    """A run of the row reads as the row: made with `+row=` (the file it records), and made by hand with the same
    groups and settings (the fallback, `derive_row`); never as another row file."""
    cfg = _compose(CONFIG_DIR, f"+row={name}")
    assert cfg.row == name and cfg.hydra.runtime.choices.row == name
    choices, config = _recorded(cfg)
    assert derive_row(choices, config, prefer=name) == name
    by_hand = {k: v for k, v in choices.items() if k != "row"}
    assert derive_row(by_hand, {**config, "row": None}) == name
    _write(tmp_path / "named", cfg, seed=1)
    write_run(tmp_path / "by_hand", seed=2, choices=by_hand, config={**config, "row": None})
    named, hand = load_run(tmp_path / "named"), load_run(tmp_path / "by_hand")
    assert (named.row, hand.row, named.notes) == (name, name, [])


def test_the_report_order_is_the_papers_tables_then_rows_outside_them():
    tabled = [name for name, row in rows().items() if row.tables]
    assert list(rows())[:len(tabled)] == tabled  # rows of a table first, the β search (no table) after them
    paper = load_paper()
    for table in ("table2", "table3"):
        published = list(dict.fromkeys(p.model for p in paper if p.table == table))
        assert [row_label(r) for r in table_rows(table)][:len(published)] == published  # the paper's, in its order
    assert row_order("zzz_not_a_row") > row_order(tabled[-1]) > row_order(tabled[0])
    with pytest.raises(ValueError, match="unknown table 'table9'"):
        table_rows("table9")


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


def test_a_copy_that_kept_its_label_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The tables find a row by its label: two rows of one label would show as one, so the catalogue refuses them."""
    shutil.copytree(ROW_DIR, tmp_path / "row")
    text = (ROW_DIR / "vae_vamp.yaml").read_text().replace("row: vae_vamp", "row: vae_vamp_copy")
    (tmp_path / "row" / "vae_vamp_copy.yaml").write_text(text)
    monkeypatch.setattr(row_files, "ROW_DIR", tmp_path / "row")
    with pytest.raises(ValueError, match=re.escape("vae_vamp.yaml, vae_vamp_copy.yaml share a `report.label`")):
        rows()


# ------------------------------------------------------------------------ docs/running.md's recipe

@pytest.fixture
def recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """docs/running.md's "Adding a row" done in a copy of conf/: `cp conf/row/vae_vamp.yaml conf/row/vae_vamp50.yaml`,
    then in the copy `row: vae_vamp50`, a new `label` and `prior: {n_components: 50}`; nothing else is edited.
    The report reads its rows from the copy (`ROW_DIR`, `CONFIG_DIR`). Returns the copied config directory. (A row
    file of the checkout that is this recipe already applied, by its name or label, is left out of the copy.)"""
    conf = tmp_path / "conf"
    shutil.copytree(CONFIG_DIR, conf)
    for name, row in rows().items():
        if name == "vae_vamp50" or row.label == "VAE+Vamp (M = 50)":
            (conf / "row" / f"{name}.yaml").unlink()
    shutil.copy(conf / "row" / "vae_vamp.yaml", conf / "row" / "vae_vamp50.yaml")
    copy = conf / "row" / "vae_vamp50.yaml"
    text = copy.read_text()
    assert text.count("row: vae_vamp\n") == 1 and text.count("label: VAE+Vamp\n") == 1
    text = text.replace("row: vae_vamp\n", "row: vae_vamp50\n")
    text = text.replace("label: VAE+Vamp\n", "label: VAE+Vamp (M = 50)\n")
    copy.write_text(text + "prior:\n  n_components: 50\n")
    monkeypatch.setattr(row_files, "ROW_DIR", conf / "row")
    monkeypatch.setattr(row_files, "CONFIG_DIR", conf)
    return conf


def test_a_row_copied_by_the_recipe_is_a_row_of_its_own_everywhere(recipe: Path, tmp_path: Path):
    """The copy composes with its own settings, reads back as itself (and VAE+Vamp as VAE+Vamp), joins the Table 3
    preset, makes no claim, and a report over a run of each row shows them apart with their own n_components."""
    copy, vamp = _compose(recipe, "+row=vae_vamp50"), _compose(recipe, "+row=vae_vamp")
    assert (copy.row, copy.report.label, copy.prior.n_components, vamp.prior.n_components) == (
        "vae_vamp50", "VAE+Vamp (M = 50)", 50, 5)
    for cfg in (copy, vamp):
        choices, config = _recorded(cfg)
        assert derive_row({k: v for k, v in choices.items() if k != "row"}, {**config, "row": None}) == cfg.row
    table3 = _compose(recipe, "experiment=table3").hydra.sweeper.params.row.split(",")
    papers = ["wmf", "slim", "cdae", "awae", "mult_vae", "vae_vamp", "vae_iaf", "vae_reg", "sivae"]
    assert table3[:len(papers)] == papers and "vae_vamp50" in table3[len(papers):]  # the copy joins, after them
    assert not [c for c in load_claims().claims if "vae_vamp50" in (c.row, c.against)]  # no claim inherited

    sweep = tmp_path / "sweep"
    _write(sweep / "mult_vae", _compose(recipe, "+row=mult_vae"), seed=1)
    _write(sweep / "vae_vamp", vamp, seed=1, lift=0.01)
    _write(sweep / "vae_vamp50", copy, seed=1, lift=-0.02)
    out = tmp_path / "report"
    assert main([str(sweep), "--out", str(out), "--no-plots"]) == 0
    md = (out / "report.md").read_text()
    table3_md = md.split("### Table 3: ML-20M")[1].split("\n\n")[1]
    assert "| VAE+Vamp | 1 run† | **0.3100 ± 0.0020** |" in table3_md  # its own Recall@20, beside the paper's
    assert table3_md.index("| SIVAE |") < table3_md.index("| VAE+Vamp (M = 50) | 1 run† | 0.2800 ± 0.0020 |")
    assert "### Other models" not in md  # the copy is tagged table3: it joins Table 3, after the paper's rows
    assert "read as" not in md
    with open(out / "hyperparameters.csv", newline="") as f:
        settings = {r["row"]: r["hyperparameters"] for r in csv.DictReader(f)}
    assert "n_components=5 " in settings["vae_vamp"] and "n_components=50 " in settings["vae_vamp50"]
    with open(out / "claims.csv", newline="") as f:
        claimed = {r["row"] for r in csv.DictReader(f)}
    assert "vae_vamp" in claimed and "vae_vamp50" not in claimed


def test_a_row_copied_by_the_recipe_trains_one_tiny_epoch_and_reaches_the_report(recipe: Path, tmp_path: Path):
    overrides = ["+row=vae_vamp50", "debug=vae", *TINY_MODEL[row_model("vae_vamp")], "trainer.max_epochs=1",
                 f"paths.output_dir={tmp_path / 'out'}", f"paths.cache_dir={tmp_path / 'cache'}"]
    cfg = _compose(recipe, *overrides)
    choices = dict(cfg.hydra.runtime.choices)
    del cfg.hydra  # as in a run: the job's config has no hydra node
    out = tmp_path / "sweep" / "0_vae_vamp50"
    assert run(cfg, out, choices)["status"] == "ok"
    report = tmp_path / "report"
    assert main([str(tmp_path / "sweep"), "--out", str(report), "--no-plots"]) == 0
    md = (report / "report.md").read_text()
    assert "| VAE+Vamp (M = 50) | 1 run† |" in md.split("### Table 3: synthetic")[1]
    assert "read as" not in md  # the run records its row file, and reads as it
    with open(report / "results.csv", newline="") as f:
        [line] = [r for r in csv.DictReader(f) if r["row"] == "vae_vamp50"]
    assert line["model"] == "VAE+Vamp (M = 50)" and line["n_runs"] == "1"


# ------------------------------------------------------------------------ runs of other settings

def test_a_run_made_without_row_is_never_pooled_with_a_row_of_other_settings(tmp_path: Path):
    """`train.py +row=vae_vamp seed=1` and `train.py model=mult prior=vamp prior.n_components=50 seed=2`: two rows,
    one run each, the second under its own settings; never "VAE+Vamp, 2 seeds" with n_components=5|50."""
    sweep = tmp_path / "sweep"
    _write(sweep / "vamp", _compose(CONFIG_DIR, "+row=vae_vamp", "seed=1"), seed=1)
    _write(sweep / "by_hand", _compose(CONFIG_DIR, "model=mult", "prior=vamp", "prior.n_components=50", "seed=2"),
           seed=2, lift=0.01)
    seeds = {row: g.seeds for (_, row), g in aggregate(collect([sweep])).items()}
    [other] = [row for row in seeds if row != "vae_vamp"]
    assert seeds == {"vae_vamp": [1], other: [2]}
    # its own settings' name, or a row file's whose settings they are (a copy of vae_vamp.yaml with M = 50)
    assert other == "vae_vamp[prior.n_components=50]" or rows()[other].settings["prior.n_components"] == "50"
    assert row_label("vae_vamp[prior.n_components=50]") == "VAE+Vamp (prior.n_components=50)"
    out = tmp_path / "report"
    assert main([str(sweep), "--out", str(out), "--no-plots"]) == 0
    md = (out / "report.md").read_text()
    assert "| VAE+Vamp | 1 run† |" in md and f"| {row_label(other)} | 1 run† |" in md
    with open(out / "hyperparameters.csv", newline="") as f:
        settings = {r["row"]: r["hyperparameters"] for r in csv.DictReader(f)}
    assert "n_components=5 " in settings["vae_vamp"] and "n_components=50 " in settings[other]
    assert "5|50" not in md and "50|5" not in md


@pytest.mark.parametrize(("overrides", "row"), [
    (["model=mult", "beta.cap=0.3"], "mult_vae[beta.cap=0.3]"),
    (["model=mult", "model.encoder.dropout=0.2"], "mult_vae[model.encoder.dropout=0.2]"),
    (["model=mult", "prior=vamp", "beta=constant"], "mult[prior=vamp,beta=constant]"),
    (["model=ease", "model.lambdas=[5]"], "ease[model.lambdas=[5]]"),
    (["model=ease", "model.device=cpu"], "ease"),  # how it is computed, not what
    (["model=mult", "dataset=ml-20m", "trainer.max_epochs=3"], "mult_vae"),  # the data and budget are not the row
])
def test_a_run_made_without_row_is_named_by_what_differs_from_the_nearest_row(overrides: list[str], row: str):
    choices, config = _recorded(_compose(CONFIG_DIR, *overrides))
    assert derive_row(choices, {**config, "row": None}) == row


def test_what_a_named_run_changed_of_its_row_file_is_noted(tmp_path: Path):
    cfg = _compose(CONFIG_DIR, "+row=vae_reg", "model.l2=0.1")
    choices, config = _recorded(cfg)
    assert derive_row(choices, config, prefer="vae_reg") == "vae_reg[model.l2=0.1]"
    _write(tmp_path / "reg", cfg, seed=1)
    assert load_run(tmp_path / "reg").notes == ["row 'vae_reg' has choices that read as 'vae_reg[model.l2=0.1]' "
                                                "(a command-line override?)"]
