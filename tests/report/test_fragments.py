"""The report's per-dataset fragments, and `cfrec.report.include` copying them into hand-written pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from cfrec.report.__main__ import main as report_main
from cfrec.report.include import IncludeError, main, refresh
from tests.report.test_claims import provenance_extra
from tests.report.test_paired import write_per_user
from tests.report.test_report import write_run


def _two_datasets(root: Path) -> None:
    for dataset, base in (("ml-1m-implicit", 0.45), ("citeulike-a", 0.27)):
        for seed in (1, 2):
            write_run(root / f"{dataset}_vae{seed}", dataset=dataset, seed=seed, row="mult_vae",
                      test=(base, base, base + 0.001 * seed), extra={"stopped_early": seed == 1})
        write_run(root / f"{dataset}_multinomial", dataset=dataset, row="multinomial", test=(base, base, base - 0.01))


def test_each_dataset_gets_its_own_claims_and_seeds_fragment(tmp_path: Path):
    root, out = tmp_path / "sweep", tmp_path / "report"
    _two_datasets(root)
    assert report_main([str(root), "--out", str(out), "--no-plots"]) == 0
    claims = (out / "fragments" / "claims_citeulike-a.md").read_text()
    assert "| citeulike-a |" in claims and "ml-1m" not in claims and claims.startswith("| Claim")
    seeds = (out / "fragments" / "seeds_ml-1m-implicit.md").read_text().splitlines()
    # epochs 3, best epoch 1 (counted from 0) -> "3 (2)"; seed 2 did not stop early -> "(cap)"
    assert seeds[2] == "| Mult-VAE | 0.4510 (s1), 0.4520 (s2) | 3 (2), 3 (cap) (2) |"
    assert seeds[3].startswith("| Multinomial | 0.4400 (s1) |")


def test_the_summary_fragment_has_a_line_per_claim_and_a_column_per_dataset(tmp_path: Path):
    root, out = tmp_path / "sweep", tmp_path / "report"
    _two_datasets(root)
    assert report_main([str(root), "--out", str(out), "--no-plots"]) == 0
    lines = (out / "fragments" / "claims.md").read_text().splitlines()
    assert lines[0] == "| Claim | citeulike-a | ml-1m-implicit |"  # the report's order of datasets
    multinomial = next(line for line in lines if line.startswith("| Multinomial on a par with Mult-VAE (§4.4) |"))
    cite, ml1m = multinomial.split(" | ")[1:3]
    # Δ / mean(Mult-VAE): (0.440 - 0.4515) / 0.4515 and (0.260 - 0.2715) / 0.2715, then the CI and a verdict
    assert ml1m.startswith("-2.5 % [-0.") and cite.startswith("-4.2 % [-0.") and "]: " in ml1m
    assert any(line.startswith("| Multinomial slightly below Mult-VAE *(cfrec's reading)* |") for line in lines)
    assert all(line.count(" | ") == 2 for line in lines if line.startswith("| ") and "---" not in line)


def test_controlled_runs_get_a_fragment_of_their_comparisons_beside_the_claims(tmp_path: Path):
    root, out = tmp_path / "sweep", tmp_path / "report"
    users = [f"u{i}" for i in range(40)]
    # the rows from commit aaaaaaa, the controlled runs from bbbbbbb
    arms = (("mult_vae", None, 0.0), ("mult_vae", "bias_init", 0.01), ("logistic", "bias_init", 0.02))
    for row, variant, lift in arms:
        for seed in (1, 2):
            run = write_run(root / f"{row}-{variant}_s{seed}", dataset="ml-1m-implicit", seed=seed, row=row,
                            config={"variant": variant} if variant else None,
                            extra=provenance_extra(("b" if variant else "a") * 40, False))
            # each user's lift varies around `lift` (users i % 4 = 0..3 equally often: the mean lift is exact)
            write_per_user(run, {u: 0.3 + 0.005 * (i % 7) + lift * (1 + 0.1 * (i % 4 - 1.5)) + 0.001 * seed
                                 for i, u in enumerate(users)})
    assert report_main([str(root), "--out", str(out), "--no-plots"]) == 0
    lines = (out / "fragments" / "variants_ml-1m-implicit.md").read_text().splitlines()
    assert lines[0] == ("| Row | Against | Seeds | Δ (relative) | 95 % CI (seeds + users) | p | Users only: p t "
                        "| Equivalence |")  # no dataset column: the fragment is one dataset's
    table, notes = lines[:lines.index("")], lines[lines.index("") + 1:]
    cells = {tuple(line.split(" | ")[:2]): line.split(" | ")[3] for line in table[2:]}
    assert cells["| Logistic [bias_init]", "Mult-VAE"].startswith("+0.0200 (+")
    assert cells["| Logistic [bias_init]", "Mult-VAE [bias_init]"].startswith("+0.0100 (+")
    assert not any(row == "| Mult-VAE" for row, _ in cells)  # only the controlled runs' comparisons
    # a variant against its own row mixes the two commits; like for like, both arms share one
    assert notes == [f"- {row} [bias_init] against Mult-VAE: runs from different code versions (aaaaaaa, bbbbbbb)"
                     for row in ("Logistic", "Mult-VAE")]
    assert not (out / "fragments" / "variants_citeulike-a.md").exists()


def test_include_replaces_a_blocks_text_by_its_file_and_leaves_the_rest(tmp_path: Path):
    (tmp_path / "frag.md").write_text("| a | b |\n|---|---|\n| 1 | 2 |\n")
    page = tmp_path / "page.md"
    page.write_text("# Title\n\nprose\n<!-- include: frag.md -->\nstale numbers\n<!-- /include -->\nmore prose\n")
    assert refresh(page) == 1
    expected = ("# Title\n\nprose\n<!-- include: frag.md -->\n| a | b |\n|---|---|\n| 1 | 2 |\n<!-- /include -->\n"
                "more prose\n")
    assert page.read_text() == expected
    assert refresh(page) == 1 and page.read_text() == expected  # idempotent


@pytest.mark.parametrize("text, message", [
    ("x\n<!-- include: missing.md -->\n<!-- /include -->\n", "page.md:2: include: "),
    ("x\n<!-- include: frag.md -->\nold\n", "page.md:2: include block of frag.md is not closed"),
    ("x\n\n<!-- /include -->\n", "page.md:3: '<!-- /include -->' without an opening"),
])
def test_a_malformed_page_is_refused_by_page_and_line_and_left_untouched(tmp_path: Path, text: str, message: str,
                                                                         capsys: pytest.CaptureFixture[str]):
    (tmp_path / "frag.md").write_text("new\n")
    page = tmp_path / "page.md"
    page.write_text(text)
    with pytest.raises(IncludeError, match=message.replace("(", r"\(")):
        refresh(page)
    assert main([str(page)]) == 2 and message in capsys.readouterr().err
    assert page.read_text() == text
