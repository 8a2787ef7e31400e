"""Paired comparisons of two rows on the same users: the numbers behind every claim verdict (comparisons.csv).

Each comparison takes the test users every run of both rows has in its `per_user.csv`, paired by id, and gives:
- primary, the seed-aware test of `cfrec.report.stats` (its variance holds the seeds' and the users'): Δ, 95 % CI,
  p (`seed_aware_*`, `p_seed_aware`); Holm's adjustment of that p over the claims family, the pairs that
  conf/claims.yaml compares on its metric, on each dataset (`p_holm_dataset`) and over all datasets at once
  (`p_holm_all`), blank outside the family; and equivalence (TOST) within ± the claims' margin × mean_b
  (`equivalence_margin` is that fraction): equivalent / different (below or above) / inconclusive;
- secondary, the users-only tests as before: each user's value averaged over the row's seeds, the 95 % t-interval
  of the mean paired difference (`ci_low`, `ci_high`), `scipy.stats.ttest_rel` and `scipy.stats.wilcoxon`;
- the code versions, precisions, torch / Lightning versions and devices of the runs compared (metrics.json's
  `provenance`; `unknown` for runs made before it was recorded), so that a comparison across code changes is seen.
Pairs compared: every row against Mult-VAE, every other pair a claim needs (Logistic against Multinomial), and each
controlled variant like for like (`logistic[bias_init]` against `mult_vae[bias_init]` and `multinomial[bias_init]`).
Methods and their reasons: docs/statistics.md.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from cfrec.report.claimset import ClaimSet, load_claims
from cfrec.report.collect import Run
from cfrec.report.formatting import csv_number, dataset_order
from cfrec.report.groups import Group
from cfrec.report.paper import METRICS
from cfrec.report.rows import REFERENCE
from cfrec.report.stats import Estimate, holm, seed_aware
from cfrec.run.per_user import FILENAME, read_per_user

CONFIDENCE = 0.95
NOT_COMPARED = {"beta_search"}  # runs that choose a setting, not rows of a table


@dataclass(frozen=True)
class Comparison:
    """Row a against row b on one dataset and metric: means over the paired users and the tests of a − b."""

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
    ci_low: float  # users only (secondary)
    ci_high: float
    p_ttest: float
    p_wilcoxon: float
    seed_aware_method: str
    seed_aware_se: float
    seed_aware_df: float
    seed_aware_ci_low: float
    seed_aware_ci_high: float
    p_seed_aware: float
    p_holm_dataset: float = math.nan
    p_holm_all: float = math.nan
    equivalence_margin: float = math.nan
    p_tost: float = math.nan
    equivalence: str = ""
    code_versions: str = ""
    precisions: str = ""
    libraries: str = ""
    devices: str = ""

    @property
    def relative(self) -> float:
        """diff as a fraction of row b's mean (NaN when that mean is 0)."""
        return self.diff / self.mean_b if self.mean_b else math.nan

    @property
    def estimate(self) -> Estimate:
        """The seed-aware Δ, SE and df, for further tests (claims' bounds)."""
        return Estimate(self.diff, self.seed_aware_se, self.seed_aware_df, self.seed_aware_method)


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


def code_label(run: Run) -> str:
    """`1a2b3c4`, `1a2b3c4+dirty`, `v0.3.0` (outside git) or `unknown` (no provenance): the code that made a run."""
    code = (run.metrics.get("provenance") or {}).get("code") or {}
    if code.get("commit"):
        return str(code["commit"])[:7] + ("+dirty" if code.get("dirty") else "")
    return f"v{code['version']}" if code.get("version") else "unknown"


def precision_label(run: Run) -> str:
    """The precision a run trained at (`32-true`), `none` for a closed-form fit, `unknown` without provenance."""
    provenance = run.metrics.get("provenance")
    if not isinstance(provenance, dict):
        return "unknown"
    return str(provenance.get("precision") or "none")


def library_label(run: Run) -> str:
    """`torch 2.13.0, lightning 2.6.6` for a run, `unknown` without provenance."""
    provenance = run.metrics.get("provenance")
    if not isinstance(provenance, dict):
        return "unknown"
    return f"torch {provenance.get('torch') or '?'}, lightning {provenance.get('lightning') or '?'}"


def device_label(run: Run) -> str:
    """The CPU or GPU model a run trained on, `unknown` without provenance."""
    provenance = run.metrics.get("provenance")
    return str(provenance.get("device") or "unknown") if isinstance(provenance, dict) else "unknown"


def _distinct(runs: Iterable[Run], label: Callable[[Run], str]) -> str:
    return ";".join(sorted({label(r) for r in runs}))


def versions(runs: Iterable[Run]) -> tuple[str, str]:
    """(code versions, precisions) of `runs`, each the distinct labels joined by `;`."""
    runs = list(runs)
    return _distinct(runs, code_label), _distinct(runs, precision_label)


def environment(runs: Iterable[Run]) -> tuple[str, str]:
    """(library versions, devices) of `runs`, each the distinct labels joined by `;`."""
    runs = list(runs)
    return _distinct(runs, library_label), _distinct(runs, device_label)


def _runs_with_files(group: Group) -> list[Run]:
    return [r for r in group.runs if (r.path / FILENAME).is_file()]


def _tables(runs: list[Run], split: str, cache: dict[Path, pd.DataFrame]) -> list[pd.DataFrame]:
    """Each run's users × metrics on `split`, read once per report."""
    for run in runs:
        if run.path not in cache:
            frame = read_per_user(run.path / FILENAME)
            cache[run.path] = frame[frame["split"] == split].set_index("user")[list(METRICS)]
    return [cache[r.path] for r in runs]


def _compare(dataset: str, a: Group, b: Group, split: str, metrics: tuple[str, ...], margin: float,
             alpha: float, cache: dict[Path, pd.DataFrame]) -> list[Comparison]:
    runs_a, runs_b = _runs_with_files(a), _runs_with_files(b)
    tables_a, tables_b = _tables(runs_a, split, cache), _tables(runs_b, split, cache)
    users = tables_a[0].index
    for table in tables_a[1:] + tables_b:
        users = users.intersection(table.index)
    if users.empty:
        return []
    codes, precisions = versions(runs_a + runs_b)
    libraries, devices = environment(runs_a + runs_b)
    out = []
    for metric in metrics:
        x = np.stack([t.loc[users, metric].to_numpy() for t in tables_a])
        y = np.stack([t.loc[users, metric].to_numpy() for t in tables_b])
        diff, low, high, p_t, p_w = paired_test(x.mean(0), y.mean(0))
        d, se, df, method = seed_aware(x, y)
        estimate = Estimate(float(d), float(se), float(df), method)
        mean_b = float(y.mean())
        out.append(Comparison(dataset, a.row, b.row, metric, len(users), len(runs_a), len(runs_b), float(x.mean()),
                              mean_b, diff, low, high, p_t, p_w, method, estimate.se, estimate.df,
                              *estimate.ci(CONFIDENCE), estimate.p, equivalence_margin=margin,
                              p_tost=estimate.tost(margin * abs(mean_b)),
                              equivalence=estimate.equivalence(margin * abs(mean_b), alpha), code_versions=codes,
                              precisions=precisions, libraries=libraries, devices=devices))
    return out


def _with_holm(comparisons: list[Comparison], claims: ClaimSet) -> list[Comparison]:
    """`p_holm_dataset` / `p_holm_all` on the comparisons of the claims family (pairs of claims, their metric)."""
    pairs = set(claims.pairs)
    family = [i for i, c in enumerate(comparisons) if c.metric == claims.metric and (c.row_a, c.row_b) in pairs]
    adjusted = {i: {} for i in family}
    for i, p in zip(family, holm([comparisons[i].p_seed_aware for i in family])):
        adjusted[i]["p_holm_all"] = float(p)
    for dataset in {comparisons[i].dataset for i in family}:
        mine = [i for i in family if comparisons[i].dataset == dataset]
        for i, p in zip(mine, holm([comparisons[i].p_seed_aware for i in mine])):
            adjusted[i]["p_holm_dataset"] = float(p)
    return [replace(c, **adjusted.get(i, {})) for i, c in enumerate(comparisons)]


def _pairs(rows: set[str], reference: str, claims: ClaimSet) -> list[tuple[str, str]]:
    """The pairs to compare among `rows` (those of one dataset with per-user files): every row against `reference`,
    each other pair a claim compares, and, like for like, a controlled variant `a[v]` against `b[v]` for each of
    those pairs (a[v] − mult_vae[v], logistic[v] − multinomial[v]: the same change in both arms)."""
    pairs = [(row, reference) for row in sorted(rows) if row != reference and row not in NOT_COMPARED]
    pairs += [p for p in claims.pairs if p not in pairs]
    variants = sorted({row[row.index("["):] for row in rows if row.endswith("]") and "[" in row})
    base = [(a, b) for a, b in pairs if "[" not in a]
    pairs += [(a + v, b + v) for v in variants for a, b in base if (a + v, b + v) not in pairs]
    return [(a, b) for a, b in pairs if a in rows and b in rows]


def compare(groups: dict[tuple[str, str], Group], reference: str = REFERENCE, split: str = "test",
            metrics: tuple[str, ...] = METRICS, claims: ClaimSet | None = None) -> list[Comparison]:
    """Every row with per-user files against `reference`, each other pair `claims` (default: conf/claims.yaml)
    compares, and the like-for-like pairs of controlled variants, on each dataset where both rows have per-user
    files, per metric; Holm over the claims family."""
    claims = claims if claims is not None else load_claims()
    alpha, margin = claims.thresholds.alpha, claims.thresholds.margin
    cache: dict[Path, pd.DataFrame] = {}
    has_files = {key for key, group in groups.items() if _runs_with_files(group)}
    out: list[Comparison] = []
    for dataset in dataset_order({d for d, _ in groups}):
        for row_a, row_b in _pairs({row for d, row in has_files if d == dataset}, reference, claims):
            out += _compare(dataset, groups[(dataset, row_a)], groups[(dataset, row_b)], split, metrics, margin,
                            alpha, cache)
    return _with_holm(out, claims)


def comparisons_csv(comparisons: list[Comparison]) -> str:
    """`comparisons.csv`: one line per dataset, pair of rows and metric."""
    buf = io.StringIO()
    fields = list(Comparison.__dataclass_fields__)
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for c in comparisons:
        writer.writerow({k: csv_number(v) if isinstance(v, float) else v for k, v in asdict(c).items()})
    return buf.getvalue()
