"""The runs of one (dataset, row) pooled over seeds: the mean and standard error every section of the report
shows. Ours = the mean of the runs' metrics; ± is the standard error across seeds (sample std / √n) when a row
has ≥ 2 seeds, and the per-user standard error of the single run's users (from metrics.json) when it has one."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from cfrec.report.collect import Run


@dataclass
class Group:
    """The successful runs of one (dataset, row), one per seed, and their summary."""

    dataset: str
    row: str
    runs: list[Run]
    split: str = "test"
    failed: int = 0
    incomplete: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.runs)

    @property
    def seeds(self) -> list[int | None]:
        return [r.seed for r in self.runs]

    @property
    def se_kind(self) -> str:
        """`seeds` (SE across seeds), `users` (one run: its per-user SE) or `none` (no successful run)."""
        return "seeds" if self.n >= 2 else "users" if self.n == 1 else "none"

    def value(self, metric: str) -> tuple[float, float]:
        """(mean, standard error) of `metric` on the group's split; NaNs when nothing ran."""
        if self.n == 0:
            return math.nan, math.nan
        values = [v for r in self.runs if not math.isnan(v := _split_value(r, self.split, metric))]
        if not values:
            return math.nan, math.nan
        if len(values) == 1:
            se = (self.runs[0].metrics.get(self.split) or {}).get(f"{metric}_se") if self.n == 1 else None
            return values[0], float(se) if se is not None else math.nan
        return statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))


def _split_value(run: Run, split: str, metric: str) -> float:
    value = (run.metrics.get(split) or {}).get(metric)
    return float(value) if value is not None else math.nan


def aggregate(runs: list[Run], split: str = "test") -> dict[tuple[str, str], Group]:
    """Group runs by (dataset, row); a seed run twice keeps its latest metrics.json (noted)."""
    groups: dict[tuple[str, str], Group] = {}
    for run in runs:
        group = groups.setdefault((run.dataset, run.row), Group(run.dataset, run.row, [], split))
        if run.status == "incomplete":
            group.incomplete += 1
            continue
        if not run.ok:
            group.failed += 1
            continue
        same = [r for r in group.runs if run.seed is not None and r.seed == run.seed]
        if same:
            keep, drop = (run, same[0]) if run.mtime >= same[0].mtime else (same[0], run)
            group.notes.append(f"seed {run.seed} ran twice; using {keep.path} (not {drop.path})")
            if keep is run:
                group.runs[group.runs.index(same[0])] = run
            continue
        group.runs.append(run)
    for group in groups.values():
        group.runs.sort(key=lambda r: (r.seed is None, r.seed if r.seed is not None else 0, str(r.path)))
    return groups


def runs_cell(group: Group | None) -> str:
    """What ran of a group, for a table cell: `3 seeds`, `1 run†`, `1 failed`, `not run`."""
    if group is None:
        return "not run"
    text = [f"{group.n} seeds" if group.n >= 2 else "1 run†"] if group.n else []
    text += [f"{group.failed} failed"] if group.failed else []
    text += [f"{group.incomplete} incomplete"] if group.incomplete else []
    return ", ".join(text) or "not run"
