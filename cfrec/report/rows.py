"""The rows of the report, read from their one home: `conf/row/<name>.yaml`.

A row file is the overrides that make the row (its defaults list and settings, e.g. VAE+Reg's `model.l2`) plus a
`report` node saying how the report shows it: its `label`, the paper `tables` it belongs to and, for the base row of a
VAE model, the `variants` label that runs of that model with other parts read as ("VAE (beta=constant)"). The
paper's claims about the rows are in conf/claims.yaml (`cfrec.report.claimset`). Copying a row file under a new
name, with its `row` key and label changed, is all a new row needs: the presets, the report and the tests find it.

A run with no `row` (a hand-written sweep such as `model=mult beta=zero likelihood=logistic`) is matched to the row
whose model, parts (the likelihood / prior / beta groups the rows override) and model settings it has, compared
against their defaults (conf/train.yaml, conf/model/<model>.yaml); otherwise it is named by what differs,
`mult[likelihood=gaussian,beta=constant]`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from cfrec.config import CONFIG_DIR
from cfrec.report.paper import PAPER_CSV, load_paper

ROW_DIR = CONFIG_DIR / "row"
TABLES = ("table2", "table3", "extended")  # the tables a row may belong to, in the report's order
REFERENCE = "mult_vae"  # the row every other row is compared with


@dataclass(frozen=True)
class Row:
    """One row file: its name, how the report shows it, and the choices and model settings that make it."""

    name: str
    label: str
    tables: tuple[str, ...]
    model: str
    parts: dict[str, str] = field(default_factory=dict)  # the VAE groups it overrides: likelihood, prior, beta
    settings: dict[str, str] = field(default_factory=dict)  # its model settings as text, dotted keys
    variants: str = ""  # how runs of its model with other parts read ("VAE"); its label when empty


def _value(value: Any) -> str:
    """A setting as text, so that 0.01 in a row file and in a run's config compare equal."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _flatten(node: Any, prefix: str = "") -> dict[str, str]:
    """A config node as dotted key -> value text (`{"encoder": {"dropout": 0.5}}` -> `{"encoder.dropout": "0.5"}`)."""
    if not isinstance(node, dict):
        return {}
    flat: dict[str, str] = {}
    for key, value in node.items():
        flat.update(_flatten(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key: _value(value)})
    return flat


def _overrides(defaults: Any) -> dict[str, str]:
    """`{"model": "mult", ...}` from a defaults list of `- override /model: mult` entries."""
    entries = [d for d in defaults or [] if isinstance(d, dict)]
    return {str(k).split("/")[-1]: str(v) for d in entries for k, v in d.items()}


def load_row(path: Path) -> Row:
    """One row file; a row whose `row` key is not its file name, or whose `report` node names an unknown table,
    is an error (a copy that kept the original's name would pool its runs with the original's)."""
    node = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    name = path.stem
    if node.get("row") != name:
        raise ValueError(f"{path}: `row: {node.get('row')}` must be the file's name, `row: {name}`")
    shown = node.get("report") or {}
    groups = _overrides(node.get("defaults"))
    if "claim" in shown:
        raise ValueError(f"{path}: `report.claim` is no longer read here: the claims are in conf/claims.yaml")
    tables = tuple(shown.get("tables") or ())
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise ValueError(f"{path}: unknown {unknown} (tables: {TABLES})")
    return Row(name, str(shown.get("label") or name), tables, groups.get("model", ""),
               {k: v for k, v in groups.items() if k != "model"}, _flatten(node.get("model")),
               str(shown.get("variants") or ""))


def _order(row: Row, paper: dict[str, list[str]]) -> tuple[int, int, str]:
    """The report's order: by first table, then the row's place in the paper's table, then name."""
    table = row.tables[0] if row.tables else None
    published = paper.get(table, []) if table else []
    place = published.index(row.label) if row.label in published else len(published)
    return (TABLES.index(table) if table else len(TABLES), place, row.name)


@functools.lru_cache(maxsize=4)
def _catalogue(directory: Path) -> dict[str, Row]:
    paper: dict[str, list[str]] = {}
    for p in load_paper(PAPER_CSV):
        if p.model not in paper.setdefault(p.table, []):
            paper[p.table].append(p.model)
    loaded = [load_row(path) for path in directory.glob("*.yaml")]
    return {row.name: row for row in sorted(loaded, key=lambda r: _order(r, paper))}


def rows() -> dict[str, Row]:
    """Every row of `ROW_DIR` by name, in the report's order (Table 2, Table 3, the extended baselines, others)."""
    return _catalogue(ROW_DIR)


def row_order(name: str) -> tuple[int, str]:
    """Sort key of a row name: the catalogue's order, then rows outside it by name."""
    names = list(rows())
    return (names.index(name), name) if name in names else (len(names), name)


# ------------------------------------------------------------------------------------ runs without a `row`

@functools.lru_cache(maxsize=4)
def _train_defaults(config_dir: Path) -> dict[str, str]:
    return _overrides(OmegaConf.to_container(OmegaConf.load(config_dir / "train.yaml")).get("defaults"))


@functools.lru_cache(maxsize=32)
def _model_defaults(config_dir: Path, model: str) -> dict[str, str]:
    path = config_dir / "model" / f"{model}.yaml"
    return _flatten(OmegaConf.to_container(OmegaConf.load(path), resolve=False)) if path.is_file() else {}


def _parts() -> dict[str, str]:
    """The groups the rows vary besides the model (likelihood, prior, beta), with train.yaml's defaults."""
    varied = {group for row in rows().values() for group in row.parts}
    return {group: option for group, option in _train_defaults(CONFIG_DIR).items() if group in varied}


def _families() -> set[str]:
    """The models whose rows differ by their parts (the VAE family)."""
    return {row.model for row in rows().values() if row.parts}


def _difference(model: str, parts: dict[str, str], settings: dict[str, str]) -> dict[str, str]:
    """What sets a model's run (or row) apart from the model's defaults: parts (in the VAE family), settings."""
    defaults = _parts() if model in _families() else {}
    model_defaults = _model_defaults(CONFIG_DIR, model)
    keys = dict.fromkeys(k for row in rows().values() for k in row.settings)  # the settings rows are made of
    diff = {group: parts.get(group, default) for group, default in defaults.items()
            if parts.get(group, default) != default}
    diff.update({k.rsplit(".", 1)[-1]: settings[k] for k in keys
                 if k in settings and k in model_defaults and settings[k] != model_defaults[k]})
    return diff


def _run_settings(config: dict[str, Any] | None) -> dict[str, str]:
    model = (config or {}).get("model")
    flat = _flatten(model) if isinstance(model, dict) else {}
    return {k: v for k, v in flat.items() if v != "None"}


def derive_row(choices: dict[str, Any], config: dict[str, Any] | None = None, prefer: str | None = None) -> str:
    """The row a run's group choices and model settings make: the row file with the same model, parts and
    settings (`prefer` when it is one of several), else `<model>[k=v,...]` for a VAE model and the model's
    row (or the model's name) for the others."""
    model = str(choices.get("model") or (config or {}).get("model", {}).get("_target_", "unknown"))
    parts = {group: str(choices[group]) for group in _parts() if choices.get(group)}
    diff = _difference(model, parts, _run_settings(config))
    same = [row.name for row in rows().values()
            if row.model == model and _difference(model, row.parts, row.settings) == diff]
    if same:
        return prefer if prefer in same else same[0]
    if model not in _families():
        return next((row.name for row in rows().values() if row.model == model), model)
    return f"{model}[" + ",".join(f"{k}={v}" for k, v in diff.items()) + "]"


def row_label(name: str) -> str:
    """The display label of a row name: its row file's; `VAE (beta=constant)` for a derived VAE variant;
    `Mult-VAE [bias_init]` for a controlled variant or grid point of a row; the name itself otherwise."""
    catalogue = rows()
    if name in catalogue:
        return catalogue[name].label
    base, sep, rest = name.partition("[")
    if not (sep and rest.endswith("]")):
        return name
    if base in _families():
        bases = [r for r in catalogue.values() if r.model == base and not _difference(base, r.parts, r.settings)]
        family = (bases[0].variants or bases[0].label) if bases else base
        return f"{family} ({rest[:-1].replace(',', ', ')})"
    if base in catalogue:
        return f"{catalogue[base].label} [{rest[:-1]}]"
    return name

