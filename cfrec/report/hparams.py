"""The section "## Hyperparameters and time per row": what each (dataset, row) group ran and what it cost.

The hyperparameters are read from each run's composed config: the `model` node (a VAE's holds the β
schedule, prior and likelihood that Hydra interpolates into it) flattened to dotted keys, a nested
`_target_` shown as its class name with its settings in parentheses (`encoder=GaussianEncoder(dropout=0.5)`),
plus `dataset.batch_size` for models trained in epochs and what a closed-form model picked on the
validation users (`chosen.lambda` of EASE). A value that differs between the runs of a group reads `v1|v2`.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Iterable
from typing import Any

from cfrec.report.collect import Run
from cfrec.report.formatting import csv_number, dataset_label, dataset_order, one_line
from cfrec.report.groups import Group
from cfrec.report.rows import HOW_KEYS, row_order

_HIDDEN = {"_target_", "_partial_", "n_items", "n_users"}
_NOISE = HOW_KEYS  # settings that change how a model is computed, not what it computes (cfrec.report.rows)
HEAD = ["Dataset", "Model", "Runs (seeds)", "Epochs", "Best epoch(s)", "Fit time per run (s)", "Precision",
        "Hyperparameters"]


def _value(value: Any) -> str:
    """A config value as text: `0.001`, `[100,100]`, `true`."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ",".join(_value(v) for v in value) + "]"
    return str(value)


def shown_settings(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """A config node as dotted key -> value text, without nulls, `_target_`s, sizes and `_NOISE`; a nested
    node with a `_target_` also gets its class name under its own key."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        if key in _HIDDEN or key in _NOISE or value is None:
            continue
        if isinstance(value, dict):
            if "_target_" in value:
                flat[prefix + key] = str(value["_target_"]).rsplit(".", 1)[-1]
            flat.update(shown_settings(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = _value(value)
    return flat


def render(flat: dict[str, str]) -> str:
    """`k=v` pairs on one line, the keys under a class-valued key in parentheses after it."""
    parts = []
    for key, value in flat.items():
        if any(key.startswith(parent + ".") for parent in flat):
            continue  # shown inside its parent's parentheses
        inner = {k[len(key) + 1:]: v for k, v in flat.items() if k.startswith(key + ".")}
        parts.append(f"{key}={value}" + (f"({render(inner)})" if inner else ""))
    return " ".join(parts)


def _trained(run: Run) -> bool:
    """Whether the run trained in epochs (a closed-form fit has no `epochs` in its metrics.json)."""
    return "epochs" in run.metrics


def _config(run: Run, node: str) -> dict[str, Any]:
    node_config = (run.metrics.get("config") or {}).get(node)
    return node_config if isinstance(node_config, dict) else {}


def run_hyperparameters(run: Run) -> dict[str, str]:
    """One run's model settings, batch size (trained models) and `chosen` scalars not already in its config."""
    flat = shown_settings(_config(run, "model"))
    if _trained(run) and _config(run, "dataset").get("batch_size") is not None:
        flat["batch_size"] = _value(_config(run, "dataset")["batch_size"])
    chosen = run.metrics.get("chosen") or {}
    flat.update({f"chosen.{k}": _value(v) for k, v in chosen.items()
                 if not isinstance(v, dict) and flat.get(k) != _value(v)})
    return flat


def _alternatives(values: Iterable[str]) -> str:
    """The distinct values in order of appearance, `|`-joined."""
    return "|".join(dict.fromkeys(values))


def hyperparameters(group: Group) -> str:
    """The group's hyperparameters on one line, `k=v1|v2` where its runs differ (`–`: absent in a run)."""
    flats = [run_hyperparameters(r) for r in group.runs]
    keys = dict.fromkeys(k for flat in flats for k in flat)
    return render({k: _alternatives(flat.get(k, "–") for flat in flats) for k in keys})


def _trainer(group: Group, key: str) -> str:
    """`trainer.<key>` of the group's runs that trained in epochs ("" when none did or none has it)."""
    values = (_config(r, "trainer").get(key) for r in group.runs if _trained(r))
    return _alternatives(_value(v) for v in values if v is not None)


def fit_seconds(group: Group) -> list[float]:
    """The `train_seconds` of the group's runs."""
    return [float(r.metrics["train_seconds"]) for r in group.runs if r.metrics.get("train_seconds") is not None]


def _seconds(x: float) -> str:
    return f"{x:.0f}" if x >= 10 else f"{x:.1f}"


def _time_cell(seconds: list[float]) -> str:
    """Mean, and (min–max) over several runs."""
    if not seconds:
        return "–"
    mean = _seconds(statistics.fmean(seconds))
    return mean if len(seconds) == 1 else f"{mean} ({_seconds(min(seconds))}–{_seconds(max(seconds))})"


def _best_epochs(group: Group, first: int = 1) -> list[str]:
    """The tested epoch of each run, counted from `first`: 1 for report.md, as the console counts them; 0 for
    hyperparameters.csv, like metrics.json's `best_epoch`."""
    return [str(r.metrics["best_epoch"] + first) for r in group.runs if r.metrics.get("best_epoch") is not None]


def ordered_groups(groups: dict[tuple[str, str], Group]) -> list[Group]:
    """The groups with a successful run, by dataset in the report's order, then in the paper's row order."""
    datasets = dataset_order({d for d, _ in groups})
    return sorted((g for g in groups.values() if g.runs), key=lambda g: (datasets.index(g.dataset), row_order(g.row)))


def hyperparameters_markdown(groups: dict[tuple[str, str], Group]) -> str:
    """The section: one line per (dataset, row) with a successful run, then what the columns mean."""
    rows = ordered_groups(groups)
    if not rows:
        return ""
    out = ["## Hyperparameters and time per row", "", "| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    for g in rows:
        cells = [dataset_label(g.dataset), g.runs[0].label, f"{g.n} ({', '.join(str(s) for s in g.seeds)})",
                 _trainer(g, "max_epochs") or "–", ", ".join(_best_epochs(g)) or "–", _time_cell(fit_seconds(g)),
                 _trainer(g, "precision") or "–", one_line(hyperparameters(g), 1000) or "–"]
        out.append("| " + " | ".join(cells) + " |")
    out += ["", ("Successful runs only. Epochs: `trainer.max_epochs`; best epoch: the one tested, per seed, counted "
                 "from 1; – for models fitted in closed form, which use neither epochs nor the trainer's precision. "
                 "Fit time: `train_seconds` (fit, then the final validation and test; data loading excluded), mean "
                 "(min–max) over the runs. Hyperparameters: the `model` config (nested classes with their settings "
                 "in parentheses), `dataset.batch_size` of trained models and `chosen.*`, what a closed-form model "
                 "picked on the validation users; `a|b` where the runs differ. Left out: nulls, n_items, n_users "
                 f"and {', '.join(sorted(_NOISE))}.")]
    return "\n".join(out)


def hyperparameters_csv(groups: dict[tuple[str, str], Group]) -> str:
    """The section's lines as CSV (blank where the Markdown shows –), fit time as mean, min and max."""
    buf = io.StringIO()
    fields = ["dataset", "model", "row", "n_runs", "seeds", "epochs", "best_epochs", "fit_seconds",
              "fit_seconds_min", "fit_seconds_max", "precision", "hyperparameters"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for g in ordered_groups(groups):
        seconds = fit_seconds(g)
        writer.writerow({
            "dataset": g.dataset, "model": g.runs[0].label, "row": g.row, "n_runs": g.n,
            "seeds": " ".join(str(s) for s in g.seeds), "epochs": _trainer(g, "max_epochs"),
            "best_epochs": " ".join(_best_epochs(g, first=0)),
            "fit_seconds": csv_number(statistics.fmean(seconds) if seconds else None),
            "fit_seconds_min": csv_number(min(seconds, default=None)),
            "fit_seconds_max": csv_number(max(seconds, default=None)),
            "precision": _trainer(g, "precision"), "hyperparameters": hyperparameters(g)})
    return buf.getvalue()
