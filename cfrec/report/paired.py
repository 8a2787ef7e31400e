"""Paired comparisons of two rows on the same users: the test behind every claim verdict.

For each (dataset, row) the per-user values of its runs (`per_user.csv`) are averaged over the row's seeds,
users are paired by id with the reference row (Mult-VAE), and the paired differences are tested with
`scipy.stats.ttest_rel` and `scipy.stats.wilcoxon` (defaults); the CI is the 95 % t-interval of the mean
paired difference. Seeds enter only through the per-user averages, so the tests ask whether the two rows
differ on these users, not how much a new seed would move them (the seed SE is reported beside them).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from cfrec.per_user import FILENAME, read_per_user
from cfrec.report.formatting import csv_number, dataset_order
from cfrec.report.groups import Group
from cfrec.report.paper import METRICS
from cfrec.report.rows import REFERENCE

CONFIDENCE = 0.95
NOT_COMPARED = {"beta_search"}  # runs that choose a setting, not rows of a table


@dataclass(frozen=True)
class Comparison:
    """Row a against row b on one dataset and metric: means over the paired users, and the tests of a − b."""

    dataset: str
    row_a: str
    row_b: str
    metric: str
    n_users: int
    n_seeds_a: int
    n_seeds_b: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    p_ttest: float
    p_wilcoxon: float

    @property
    def relative(self) -> float:
        """diff as a fraction of row b's mean (NaN when that mean is 0)."""
        return self.diff / self.mean_b if self.mean_b else math.nan


def user_means(group: Group, split: str = "test") -> tuple[pd.DataFrame, int] | None:
    """(users × metrics averaged over the group's runs, number of runs read); None when no run has
    per_user.csv. Runs from before per-user files existed are skipped."""
    frames = []
    for run in group.runs:
        path = run.path / FILENAME
        if path.is_file():
            frame = read_per_user(path)
            frames.append(frame[frame["split"] == split].set_index("user")[list(METRICS)])
    if not frames:
        return None
    return pd.concat(frames).groupby(level=0).mean(), len(frames)


def paired_test(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float, float]:
    """(mean difference, CI low, CI high, p of the paired t-test, p of the Wilcoxon signed-rank test) of a − b.

    Identical samples have no spread to test: the difference is 0 with p = 1 (scipy would give NaN or raise)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    n = d.size
    mean = float(d.mean()) if n else math.nan
    if n < 2 or not np.any(d):
        return mean, mean, mean, 1.0 if n else math.nan, 1.0 if n else math.nan
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * d.std(ddof=1) / math.sqrt(n)
    p_t = float(stats.ttest_rel(a, b).pvalue)
    p_w = float(stats.wilcoxon(a, b).pvalue)
    return mean, mean - half, mean + half, p_t, p_w


def compare(groups: dict[tuple[str, str], Group], reference: str = REFERENCE, split: str = "test",
            metrics: tuple[str, ...] = METRICS) -> list[Comparison]:
    """Every row with per-user files against `reference` on each dataset where both have them, per metric."""
    means = {key: user_means(group, split) for key, group in groups.items()}
    out: list[Comparison] = []
    for dataset in dataset_order({d for d, _ in groups}):
        ref = means.get((dataset, reference))
        if ref is None:
            continue
        for (d, row), mine in sorted(means.items()):
            if d != dataset or row == reference or row in NOT_COMPARED or mine is None:
                continue
            (a, n_a), (b, n_b) = mine, ref
            users = a.index.intersection(b.index)
            for metric in metrics:
                x, y = a.loc[users, metric].to_numpy(), b.loc[users, metric].to_numpy()
                diff, low, high, p_t, p_w = paired_test(x, y)
                out.append(Comparison(dataset, row, reference, metric, len(users), n_a, n_b, float(x.mean()),
                                      float(y.mean()), diff, low, high, p_t, p_w))
    return out


def comparisons_csv(comparisons: list[Comparison]) -> str:
    """`comparisons.csv`: one line per dataset, pair of rows and metric."""
    buf = io.StringIO()
    fields = list(Comparison.__dataclass_fields__)
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for c in comparisons:
        writer.writerow({k: csv_number(v) if isinstance(v, float) else v for k, v in asdict(c).items()})
    return buf.getvalue()
