"""The rows of the report, read from their one home: `conf/row/<name>.yaml`.

A row file is the overrides that make the row (its defaults list and settings, e.g. VAE+Reg's `model.l2`) plus a
`report` node saying how the report shows it: its `label`, the paper `tables` it belongs to and, for the base row of a
VAE model, the `variants` label that runs of that model with other parts read as ("VAE (beta=constant)"). The
paper's claims about the rows are in conf/claims.yaml (`cfrec.report.claimset`). Copying a row file under a new
name, with its `row` key and label changed, is all a new row needs: the presets (`table_rows`), the report and the
tests find it.

A run's row is the row file that made it, and the settings it ran with, so that runs of different settings are
never pooled as seeds of one row:
- a run made with `row=<name>` records its row file in its config (`row`, and the `row` choice), and the report
  reads that (cfrec.report.collect); what the command line changed of the file's own (a group it overrides, a
  setting it writes) is noted, as what the run reads as, `<name>[key=value]`;
- a run made without `row` (a hand-written sweep such as `model=mult beta=zero likelihood=logistic`) is a row file's
  only when its model, parts (the likelihood / prior / beta groups) and every setting of its `model`, `likelihood`,
  `prior` and `beta` nodes equal what that row file composes to; otherwise it is reported under its own settings,
  as the nearest row (same model and parts) with what differs, `vae_vamp[prior.n_components=50]`, or as the model
  with what differs from its defaults, `mult[likelihood=gaussian,beta=constant]`.
Not compared: values the config files interpolate (β's ramp, sized by the dataset preset) and `HOW_KEYS`, which
change how a model is computed, not what.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from cfrec.config import CONFIG_DIR, flatten
from cfrec.report.paper import PAPER_CSV, load_paper

ROW_DIR = CONFIG_DIR / "row"
TABLES = ("table2", "table3", "extended")  # the tables a row may belong to, in the report's order
REFERENCE = "mult_vae"  # the row every other row is compared with
NODES = ("model", "likelihood", "prior", "beta")  # the config nodes that make a row's model
# settings that change how a model is computed, not what it computes (nor the row it is)
HOW_KEYS = frozenset({"device", "num_threads", "n_jobs", "chunks_per_job", "random_state", "eval_batch_size"})


@dataclass(frozen=True)
class Row:
    """One row file: its name, how the report shows it, and the choices and settings it writes."""

    name: str
    label: str
    tables: tuple[str, ...]
    model: str
    parts: dict[str, str] = field(default_factory=dict)  # the VAE groups it overrides: likelihood, prior, beta
    settings: dict[str, str] = field(default_factory=dict)  # what it writes under NODES, as text: `model.l2`
    variants: str = ""  # how runs of its model with other parts read ("VAE"); its label when empty


def _value(value: Any) -> str:
    """A setting as text, so that 0.01 in a row file and in a run's config compare equal."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _settings(node: Any) -> dict[str, str]:
    """Config nodes as dotted key -> value text (`{"prior": {"n_components": 50}}` -> `{"prior.n_components": "50"}`),
    without interpolations (`${...}`: the dataset's or another node's value) and `HOW_KEYS`."""
    if not isinstance(node, dict):
        return {}
    flat = {key: _value(value) for key, value in flatten(node).items() if value != {}}
    return {k: v for k, v in flat.items() if "${" not in v and k.rsplit(".", 1)[-1] not in HOW_KEYS}


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
               {k: v for k, v in groups.items() if k != "model"},
               _settings({k: node[k] for k in NODES if k in node}), str(shown.get("variants") or ""))


def _order(row: Row, paper: dict[str, list[str]]) -> tuple[int, int, str]:
    """The report's order: by first table, then the row's place in the paper's table, then name."""
    table = row.tables[0] if row.tables else None
    return (TABLES.index(table) if table else len(TABLES), *_place(row, table, paper))


def _place(row: Row, table: str | None, paper: dict[str, list[str]]) -> tuple[int, str]:
    """A row's place in a paper table (`paper.csv`'s order), rows the paper does not have after its own, by name."""
    published = paper.get(table, []) if table else []
    return (published.index(row.label) if row.label in published else len(published), row.name)


@functools.lru_cache(maxsize=1)
def _paper_order() -> dict[str, list[str]]:
    """Each table's labels in the paper's order (`paper.csv`)."""
    paper: dict[str, list[str]] = {}
    for p in load_paper(PAPER_CSV):
        if p.model not in paper.setdefault(p.table, []):
            paper[p.table].append(p.model)
    return paper


@functools.lru_cache(maxsize=4)
def _catalogue(directory: Path) -> dict[str, Row]:
    loaded = [load_row(path) for path in sorted(directory.glob("*.yaml"))]
    labels = [row.label for row in loaded]
    repeated = sorted({f"{r.name}.yaml" for r in loaded if labels.count(r.label) > 1})
    if repeated:  # the report's tables find rows by label: two rows of one label would show as one
        raise ValueError(f"{directory}: {', '.join(repeated)} share a `report.label`; give each row its own")
    return {row.name: row for row in sorted(loaded, key=lambda r: _order(r, _paper_order()))}


def rows() -> dict[str, Row]:
    """Every row of `ROW_DIR` by name, in the report's order (Table 2, Table 3, the extended baselines, others)."""
    return _catalogue(ROW_DIR)


def table_rows(table: str) -> list[str]:
    """The rows whose `report.tables` names `table`, in the paper's order of that table, then the others by name:
    what `experiment=table2` / `table3` sweep (`${table_rows:table3}`, cfrec.config)."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r} (tables: {TABLES})")
    tagged = [row for row in rows().values() if table in row.tables]
    return [row.name for row in sorted(tagged, key=lambda r: _place(r, table, _paper_order()))]


def row_order(name: str) -> tuple[int, str]:
    """Sort key of a row name: the catalogue's order, then rows outside it by name."""
    names = list(rows())
    return (names.index(name), name) if name in names else (len(names), name)


# ------------------------------------------------------------------------------------ a run's row

@functools.lru_cache(maxsize=4)
def _train_defaults(config_dir: Path) -> dict[str, str]:
    return _overrides(OmegaConf.to_container(OmegaConf.load(config_dir / "train.yaml")).get("defaults"))


@functools.lru_cache(maxsize=64)
def _group_settings(config_dir: Path, group: str, option: str) -> dict[str, str]:
    """`conf/<group>/<option>.yaml`'s settings under `<group>.` (empty when there is no such file)."""
    path = config_dir / group / f"{option}.yaml"
    return _settings({group: OmegaConf.to_container(OmegaConf.load(path), resolve=False)}) if path.is_file() else {}


def _parts() -> dict[str, str]:
    """The groups the rows vary besides the model (likelihood, prior, beta), with train.yaml's defaults."""
    varied = {group for row in rows().values() for group in row.parts}
    return {group: option for group, option in _train_defaults(CONFIG_DIR).items() if group in varied}


def _families() -> set[str]:
    """The models whose rows differ by their parts (the VAE family)."""
    return {row.model for row in rows().values() if row.parts}


def _composed(model: str, parts: dict[str, str], written: dict[str, str]) -> dict[str, str]:
    """The settings a model with these parts and these settings written over them composes to (conf/<group>/)."""
    out = dict(_group_settings(CONFIG_DIR, "model", model))
    for group, option in parts.items():
        out.update(_group_settings(CONFIG_DIR, group, option))
    return {**out, **written}


def _differences(run: dict[str, str], reference: dict[str, str]) -> dict[str, str]:
    """The run's settings that differ from `reference`'s, on the keys both hold (a run's record may hold fewer)."""
    return {key: value for key, value in run.items() if key in reference and reference[key] != value}


def _named(base: str, diff: dict[str, str]) -> str:
    return f"{base}[" + ",".join(f"{k}={v}" for k, v in diff.items()) + "]" if diff else base


def _as_its_row(row: Row, model: str, parts: dict[str, str], settings: dict[str, str]) -> str:
    """A run made with `row=<row>`: the row, or the row with what its command line changed of the file's own."""
    diff = {"model": model} if model != row.model else {}
    diff.update({group: parts[group] for group, option in row.parts.items() if parts.get(group, option) != option})
    diff.update(_differences(settings, row.settings))
    return _named(row.name, diff)


def derive_row(choices: dict[str, Any], config: dict[str, Any] | None = None, prefer: str | None = None) -> str:
    """What a run with these group choices and this config reads as. With `prefer` (the row file the run names):
    that row, or `<row>[k=v,...]` where the run changed what the file sets. Without (the fallback for runs made
    without `row`): the row file whose model, parts and settings equal the run's, else the run's own settings as
    `<nearest row>[k=v,...]` or `<model>[k=v,...]`, never a row of other settings."""
    config = config or {}
    model = str(choices.get("model") or (config.get("model") or {}).get("_target_", "unknown"))
    family = model in _families()
    parts = {group: str(choices.get(group) or default) for group, default in _parts().items()} if family else {}
    settings = _settings({k: config[k] for k in (NODES if family else NODES[:1]) if isinstance(config.get(k), dict)})
    catalogue = rows()
    if prefer is not None:
        return _as_its_row(catalogue[prefer], model, parts, settings) if prefer in catalogue else prefer
    candidates = [row for row in catalogue.values()
                  if row.model == model and (not family or {**_parts(), **row.parts} == parts)]
    diffs = {row.name: _differences(settings, _composed(model, {**_parts(), **row.parts} if family else {},
                                                        row.settings)) for row in candidates}
    if diffs:
        nearest = min(diffs, key=lambda name: len(diffs[name]))  # the first of the catalogue's order on a tie
        return _named(nearest, diffs[nearest])
    moved = {group: option for group, option in parts.items() if option != _parts()[group]}
    return _named(model, {**moved, **_differences(settings, _composed(model, parts, {}))})


def _reads_as_settings(rest: str) -> bool:
    """Whether `rest` of `<row>[rest]` is a run's own settings (`prior.n_components=50`, `prior=standard`), not a
    variant's name (`bias_init`) or a grid point of the row (`l2=0.001`)."""
    key = rest.split("=", 1)[0]
    return "=" in rest and ("." in key or key in NODES)


def row_label(name: str) -> str:
    """The display label of a row name: its row file's; `VAE (beta=constant)` for a derived VAE variant;
    `VAE+Vamp (prior.n_components=50)` for a run of a row's model and parts with other settings;
    `Mult-VAE [bias_init]` for a controlled variant or grid point of a row; the name itself otherwise."""
    catalogue = rows()
    if name in catalogue:
        return catalogue[name].label
    base, sep, rest = name.partition("[")
    if not (sep and rest.endswith("]")):
        return name
    rest = rest[:-1]
    if base in _families():
        bases = [r for r in catalogue.values() if r.model == base and not r.settings
                 and all(r.parts.get(g, o) == o for g, o in _parts().items())]
        family = (bases[0].variants or bases[0].label) if bases else base
        return f"{family} ({rest.replace(',', ', ')})"
    if base in catalogue:
        if _reads_as_settings(rest):
            return f"{catalogue[base].label} ({rest.replace(',', ', ')})"
        return f"{catalogue[base].label} [{rest}]"
    return name
