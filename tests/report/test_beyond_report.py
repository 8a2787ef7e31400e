"""The report's beyond-accuracy section: coverage / Gini / popularity per row and NDCG@100 by activity quintile."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest

from cfrec.report.__main__ import main
from cfrec.report.beyond import beyond_csv, beyond_value, quintiles
from cfrec.report.collect import collect
from cfrec.report.groups import aggregate
from tests.report.test_report import _summary, write_run


def activity(ndcgs: list[float], se: float = 0.01) -> dict:
    return {"test": [{"quintile": i + 1, "activity_min": 4 * i + 1, "activity_max": 4 * i + 4, "n_users": 20,
                      "ndcg@100": v, "ndcg@100_se": se} for i, v in enumerate(ndcgs)]}


def beyond_run(path: Path, seed: int, coverage: float, quintile_ndcg: list[float] | None, **kw) -> Path:
    test = {**_summary(0.3, 0.4, 0.35), "coverage@100": coverage, "gini@100": 0.8, "popularity@100": 0.1}
    extra = {"test": test, **({"by_activity": activity(quintile_ndcg)} if quintile_ndcg else {})}
    return write_run(path, dataset="ml-1m-implicit", seed=seed, extra=extra, **kw)


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """Mult-VAE with 2 seeds (coverage 0.2 and 0.3), EASE with one run, and an older run without the figures."""
    root = tmp_path / "sweep"
    beyond_run(root / "0", 1, 0.2, [0.1, 0.2, 0.3, 0.4, 0.5])
    beyond_run(root / "1", 2, 0.3, [0.3, 0.4, 0.5, 0.6, 0.7])
    beyond_run(root / "2", 1, 0.5, [0.2, 0.2, 0.2, 0.2, 0.2], choices={"model": "ease"}, trained=False)
    write_run(root / "3", dataset="ml-1m-implicit", seed=1, choices={"model": "wmf"})
    return root


def test_groups_average_the_figures_across_seeds(sweep: Path):
    groups = aggregate(collect([sweep]))
    mean, se = beyond_value(groups[("ml-1m-implicit", "mult_vae")], "coverage@100")
    assert mean == pytest.approx(0.25) and se == pytest.approx(0.05)  # stdev(0.2, 0.3) / √2
    q = quintiles(groups[("ml-1m-implicit", "mult_vae")])
    assert [x["ndcg@100"] for x in q] == pytest.approx([0.2, 0.3, 0.4, 0.5, 0.6])
    assert q[0]["ndcg@100_se"] == pytest.approx(0.1) and not q[0]["per_user_se"]
    single = quintiles(groups[("ml-1m-implicit", "ease")])
    assert single[0]["ndcg@100_se"] == 0.01 and single[0]["per_user_se"]  # one run: its per-user SE
    assert quintiles(groups[("ml-1m-implicit", "wmf")]) == []
    assert math.isnan(beyond_value(groups[("ml-1m-implicit", "wmf")], "coverage@100")[0])


def test_cli_adds_the_section_csv_and_plot(sweep: Path, tmp_path: Path, capsys):
    out = tmp_path / "report"
    assert main([str(sweep), "--out", str(out)]) == 0
    markdown = (out / "report.md").read_text()
    section = markdown[markdown.index("## Beyond accuracy"):]
    assert "| Mult-VAE | 2 | 0.2500 ± 0.0500 | 0.8000 ± 0.0000 | 0.1000 ± 0.0000 |" in section
    assert "| WMF | 1 | – | – | – |" in section
    assert "Q1 (1–4 items, 20 users)" in section and "| EASE | 0.2000 ± 0.0100† |" in section
    assert (out / "activity_ndcg_100_ml-1m-implicit.png").stat().st_size > 0
    rows = list(csv.DictReader(io.StringIO((out / "beyond.csv").read_text())))
    by_row = {r["row"]: r for r in rows}
    assert float(by_row["mult_vae"]["q5_ndcg@100"]) == pytest.approx(0.6)
    assert by_row["mult_vae"]["q5_activity"] == "17-20"
    assert by_row["wmf"]["coverage@100"] == ""


def test_runs_without_the_figures_get_no_section(tmp_path: Path):
    write_run(tmp_path / "sweep" / "0", seed=1)
    groups = aggregate(collect([tmp_path / "sweep"]))
    assert beyond_csv(groups).count("\n") == 2  # header + the row, with empty cells
    assert main([str(tmp_path / "sweep"), "--out", str(tmp_path / "r"), "--no-plots"]) == 0
    assert "## Beyond accuracy" not in (tmp_path / "r" / "report.md").read_text()
