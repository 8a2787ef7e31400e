"""What report.md shows for a dataset of one's own: a standard error too small for 4 decimals is not `± 0.0000`
(which reads as identical seeds), and no paper dataset's published numbers unless one is asked for."""

from __future__ import annotations

import json
from pathlib import Path

from cfrec.report.__main__ import main
from cfrec.report.formatting import se_number


def test_a_standard_error_below_four_decimals_keeps_two_significant_digits():
    assert se_number(0.0123) == "0.0123" and se_number(0.00005) == "0.0001"
    assert se_number(0.0000123) == "0.000012" and se_number(0.000049) == "0.000049"
    assert se_number(0.0) == "0"  # seeds that agree to the last bit


def write_run(path: Path, seed: int, ndcg: float) -> None:
    """A Mult-VAE run on `dataset=custom` (Table 2's first row)."""
    path.mkdir(parents=True)
    summary = {"recall@20": ndcg, "recall@50": ndcg, "ndcg@100": ndcg, "n_users": 190,
               **{f"{m}_se": 0.01 for m in ("recall@20", "recall@50", "ndcg@100")}}
    choices = {"model": "mult", "likelihood": "multinomial", "prior": "standard", "beta": "anneal",
               "dataset": "custom", "row": "mult_vae"}
    (path / "metrics.json").write_text(json.dumps({
        "status": "ok", "model": "mult", "dataset": "custom", "seed": seed, "choices": choices, "val": summary,
        "test": summary, "train_seconds": 1.0,
        "config": {"seed": seed, "row": "mult_vae", "dataset": {"name": "custom"}}}))


def test_a_custom_datasets_table_has_no_paper_numbers_and_no_zero_spread(tmp_path: Path):
    for seed, ndcg in ((1, 0.30001), (2, 0.30003)):  # seeds 0.00002 apart
        write_run(tmp_path / "sweep" / str(seed), seed, ndcg)
    assert main([str(tmp_path / "sweep"), "--no-plots"]) == 0
    md = (tmp_path / "sweep" / "report" / "report.md").read_text()
    line = next(ln for ln in md.splitlines() if ln.startswith("| Mult-VAE |"))
    assert "0.3000 ± 0.000010" in line and "± 0.0000 " not in line
    assert "for reference only" not in md and "0.395" not in md  # ML-20M's published Recall@20 of Mult-VAE
    args = [str(tmp_path / "sweep"), "--no-plots", "--reference-dataset", "ml-20m", "--out", str(tmp_path / "r")]
    assert main(args) == 0
    assert "0.395" in (tmp_path / "r" / "report.md").read_text()  # shown when asked for
