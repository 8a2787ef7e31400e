"""Find the runs of one or more sweep directories and label each with its (dataset, row).

The dataset is the run's `dataset.name`, made `<name> (<what differs>)` where runs of one name were evaluated on
different splits (cfrec/report/splits.py), so that no part of the report pools them.

A run is a directory holding `metrics.json` (written by `cfrec.run.training.run`, or by `train.py` with
`status: failed` when the run raised). A directory holding `.hydra/config.yaml` but no `metrics.json`
is an *incomplete* run (still running, killed, or crashed before anything was written).

A run's `variant` (a name given on the command line to a controlled run of a row, e.g. `variant=bias_init`)
makes it a row of its own, `<row>[<variant>]`; so does `tune` (the keys of a grid over the row's own settings,
e.g. `tune=model.l2`), which names it by their values, `<row>[l2=0.001]`. Otherwise the row is the one the run
names (the `row` key that `conf/row/<name>.yaml` sets, or the `row` group choice), with a note where a
command-line override changed what that file fixes; a run that names no row is the row file whose model, parts
and settings equal its own, else `<nearest row>[k=v,...]` (`cfrec.report.rows.derive_row`), so that hand-written
sweeps such as `model=mult beta=zero likelihood=logistic` still land on the paper's "Logistic" row.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from cfrec.report.rows import derive_row, row_label
from cfrec.report.splits import name_splits

_SKIP_DIRS = {".hydra", ".submitit", "checkpoints", "wandb", "csv", "report", "lightning_logs", "__pycache__"}


def grid_point(config: dict[str, Any], keys: tuple[str, ...]) -> str:
    """`l2=0.001,n_components=50`: each tuned key's last part and its value in the run's resolved config."""
    parts = []
    for key in keys:
        value: Any = config
        for part in str(key).split("."):
            value = value.get(part) if isinstance(value, dict) else None
        parts.append(f"{str(key).rsplit('.', 1)[-1]}={f'{value:g}' if isinstance(value, float) else value}")
    return ",".join(parts)


@dataclass
class Run:
    """One run directory: its metrics.json (if any) and the labels the report groups it by."""

    path: Path
    status: str  # "ok", "failed", or "incomplete" (no metrics.json)
    dataset: str
    row: str
    seed: int | None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    mtime: float = 0.0
    grid: tuple[str, ...] = ()  # the config keys this run is a grid point of (`tune`), empty otherwise
    config: dict[str, Any] = field(default_factory=dict)  # metrics.json's resolved config, else .hydra/'s
    split: str = ""  # the split's fingerprint (cfrec.report.splits), set by `collect`

    @property
    def label(self) -> str:
        return row_label(self.row)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def test(self, metric: str) -> float:
        """The run's test value of `metric` (NaN when absent)."""
        value = (self.metrics.get("test") or {}).get(metric)
        return float(value) if value is not None else math.nan


def _load_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception:  # noqa: BLE001 (a torn or hand-edited file must not stop the report)
        return {}
    return data if isinstance(data, dict) else {}


def _hydra_files(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config, choices) from the run's `.hydra/` (Hydra writes them before the job starts)."""
    config = _load_yaml(run_dir / ".hydra" / "config.yaml")
    hydra = _load_yaml(run_dir / ".hydra" / "hydra.yaml").get("hydra", {})
    choices = ((hydra.get("runtime") or {}).get("choices")) or {}
    return config, choices


def load_run(run_dir: Path) -> Run:
    """Read one run directory (with or without metrics.json)."""
    metrics_path = run_dir / "metrics.json"
    metrics: dict[str, Any] = {}
    notes: list[str] = []
    mtime = 0.0
    if metrics_path.exists():
        mtime = metrics_path.stat().st_mtime
        try:
            metrics = json.loads(metrics_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            metrics = {"status": "failed", "error": f"unreadable metrics.json: {exc}"}
        status = str(metrics.get("status", "ok"))
    else:
        status = "incomplete"
    config = metrics.get("config") if isinstance(metrics.get("config"), dict) else None
    choices = metrics.get("choices") if isinstance(metrics.get("choices"), dict) else None
    if config is None or choices is None:  # failed / incomplete runs may lack them: read .hydra/
        h_config, h_choices = _hydra_files(run_dir)
        config = config if config is not None else h_config
        choices = choices if choices is not None else h_choices
    dataset = metrics.get("dataset") or (
        (config.get("dataset") or {}).get("name") if isinstance(config.get("dataset"), dict) else None
    )
    dataset = str(dataset or choices.get("dataset") or "unknown")
    explicit = config.get("row") or choices.get("row")
    derived = derive_row(choices, config, prefer=explicit)
    row = str(explicit or derived)
    if config.get("variant"):  # a controlled run of a row (`variant=NAME`): its own row in the report
        row = f"{row}[{config['variant']}]"
    grid = tuple([config["tune"]] if isinstance(config.get("tune"), str) else config.get("tune") or ())
    if grid:  # a grid point of the row's settings (`tune=model.l2`): its own row, named by the values
        row = f"{row}[{grid_point(config, grid)}]"
    if explicit and derived != explicit and not (grid or config.get("variant")):  # those override on purpose
        notes.append(f"row '{explicit}' has choices that read as '{derived}' (a command-line override?)")
    notes += [str(w) for w in metrics.get("warnings") or []]  # what the run itself flagged (cfrec.run.training)
    seed = metrics.get("seed", config.get("seed"))
    error = None
    if status != "ok":
        error = str(
            metrics.get("error")
            or (
                "no metrics.json (running, killed, or crashed before writing it)"
                if status == "incomplete"
                else "failed without an error message"
            )
        )
    return Run(run_dir, status, dataset, row, int(seed) if seed is not None else None, metrics, error, notes, mtime,
               grid, config)


def find_run_dirs(root: Path) -> list[Path]:
    """Directories under `root` (inclusive) holding metrics.json or .hydra/config.yaml, in sorted order."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if "metrics.json" in filenames or (here / ".hydra" / "config.yaml").is_file():
            found.append(here)
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
    return sorted(found, key=_natural)


def _natural(path: Path) -> list[Any]:
    """Sort key putting job 2 before job 10 (`2_row=...` < `10_row=...`)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def collect(roots: list[str | Path]) -> list[Run]:
    """Every run under the given sweep (or run) directories, each labelled with its split: runs of one dataset
    name on different splits get different dataset names (`cfrec.report.splits`)."""
    runs: list[Run] = []
    for root in roots:
        root = Path(root)
        if not root.exists():
            raise FileNotFoundError(f"no such directory: {root}")
        runs.extend(load_run(d) for d in find_run_dirs(root))
    name_splits(runs)
    return runs
