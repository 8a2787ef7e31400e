"""A study's settings: conf/study.yaml's `study` node checked, and the train.py overrides passed to every run.

What a study fixes with its first command (the budget, the β setting and the overrides every run gets) is recorded
in study.json, and a later command on the same study.dir must give the same (`fixed_changes`); rows, seeds and
variants may change between commands (a study grows by more seeds or rows).
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from cfrec.config import CONFIG_DIR
from cfrec.errors import ConfigError

#: train.py keys the study sets in every run's overrides, and the study option to use instead
OWNED = {"seed": "study.seeds", "row": "study.rows", "variant": "study.variants", "experiment": "study.rows",
         "hparams_search": "study.rows", "trainer.max_epochs": "study.max_epochs",
         "callbacks.early_stopping.patience": "study.patience",
         "callbacks.early_stopping.min_epochs": "study.min_epochs", "beta.cap": "study.beta",
         "beta.total_anneal_steps": "study.beta", "beta.anneal_fraction": "study.beta", "beta.max_beta": "study.beta"}
#: the keys that make a run the run it is: a variant may change any other owned key (a longer budget, another β cap)
IDENTITY_KEYS = ("seed", "row", "variant", "experiment", "hparams_search")
#: Hydra keys the study sets itself (its own folder, its runs' folders, their job name and mode)
OWNED_HYDRA = ("hydra.run", "hydra.sweep", "hydra.job.name", "hydra.output_subdir")
#: what a study keeps from its first command (study.json's settings), besides the overrides every run gets
FIXED = ("max_epochs", "patience", "min_epochs", "beta")
_NAME = re.compile(r"[A-Za-z0-9_.]+")


@dataclass(frozen=True)
class Variant:
    """Controlled runs of `rows`: `variant=<name>` and `overrides` on top of the row, for `seeds`."""

    name: str
    rows: tuple[str, ...]
    overrides: tuple[str, ...]
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class Settings:
    """The rows, seeds, budget, β (None: searched), variants and passthrough overrides of a study."""

    rows: tuple[str, ...]
    seeds: tuple[int, ...]
    max_epochs: int
    patience: int | None
    min_epochs: int
    beta: float | None
    variants: tuple[Variant, ...]
    overrides: tuple[str, ...]

    def record(self) -> dict[str, Any]:
        """The settings as study.json holds them."""
        return {"rows": list(self.rows), "seeds": list(self.seeds), "max_epochs": self.max_epochs,
                "patience": self.patience, "min_epochs": self.min_epochs,
                "beta": "search" if self.beta is None else self.beta, "overrides": list(self.overrides),
                "variants": {v.name: {"row": list(v.rows), "overrides": list(v.overrides), "seeds": list(v.seeds)}
                             for v in self.variants}}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Settings:
        """The settings study.json holds (`record` of `Settings.record`)."""
        return read_settings(OmegaConf.create({k: v for k, v in record.items() if k != "overrides"}),
                             list(record.get("overrides") or []))


def fixed_changes(recorded: Mapping[str, Any], settings: Settings) -> list[str]:
    """`study.<key>: recorded -> now` for each fixed setting that differs from the study's first command, and the
    passthrough overrides dropped and added (their order does not matter)."""
    now = settings.record()
    changed = [f"study.{key}: {recorded.get(key)!r} -> {now[key]!r}" for key in FIXED
               if recorded.get(key) != now[key]]
    old, new = recorded.get("overrides") or [], now["overrides"]
    if sorted(old) != sorted(new):
        changed.append(f"overrides {[o for o in old if o not in new]} -> {[o for o in new if o not in old]}")
    return changed


def row_names() -> list[str]:
    """The rows a study can run: every conf/row/<name>.yaml but the β search."""
    return sorted(p.stem for p in (CONFIG_DIR / "row").glob("*.yaml") if p.stem != "beta_search")


def parse_override(text: str, where: str) -> Override:
    """`text` parsed as one Hydra override, or ConfigError naming `where` it came from."""
    try:
        [override] = OverridesParser.create().parse_overrides([text])
    except (HydraException, ValueError) as error:
        raise ConfigError(f"{where}: {text!r} is not a Hydra override ({str(error).splitlines()[0]})") from None
    return override


def passthrough(task_overrides: Sequence[str]) -> tuple[str, ...]:
    """The train.py overrides of the command line (all but `study.*`), refusing those the study sets itself."""
    kept = []
    for text in task_overrides:
        override = parse_override(text, "the command line")
        key = override.key_or_group
        if key == "study" or key.startswith("study."):
            continue
        if override.is_sweep_override():
            raise ConfigError(f"{text}: a study takes one value per option (study.rows and study.seeds are its sweep)")
        if key in OWNED:
            raise ConfigError(f"{text}: the study sets {key} for every run; use {OWNED[key]}")
        kept.append(text)
    return tuple(kept)


def launcher_overrides(hydra_overrides: Sequence[str]) -> tuple[str, ...]:
    """The Hydra overrides of the command line that the study's launches take (the launcher and its options),
    refusing those the study sets itself; Hydra's own `hydra.mode` mark is dropped."""
    kept = []
    for text in hydra_overrides:
        key = parse_override(text, "the command line").key_or_group
        if key == "hydra.mode":
            continue
        if any(key == owned or key.startswith(f"{owned}.") for owned in OWNED_HYDRA):
            raise ConfigError(f"{text}: the study sets {key} itself; its runs go under study.dir")
        kept.append(text)
    return tuple(kept)


def _integer(value: Any, key: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ConfigError(f"{key}={value} must be an integer >= {least}")
    return int(value)


def _rows(value: Any, key: str) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, Sequence) or not names or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{key}={value} must be a row name or a list of them (conf/row/)")
    known = row_names()
    for name in names:
        if name not in known:
            raise ConfigError(f"{key}: no row {name!r} (rows: {', '.join(known)})")
    if len(set(names)) < len(names):
        raise ConfigError(f"{key}={list(names)} names a row twice")
    return tuple(names)


def _seeds(value: Any, key: str) -> tuple[int, ...]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return tuple(range(1, _integer(value, key, 1) + 1))
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise ConfigError(f"{key}={value} must be a number of seeds N (seeds 1..N) or a list of seeds")
    seeds = tuple(_integer(s, key, 0) for s in value)
    if len(set(seeds)) < len(seeds):
        raise ConfigError(f"{key}={list(seeds)} names a seed twice")
    return seeds


def _beta(value: Any) -> float | None:
    if value == "search":
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ConfigError(f"study.beta={value} must be `search` or a positive number (the annealed rows' β cap)")
    return float(value)


def _variant(name: Any, spec: Any, seeds: tuple[int, ...]) -> Variant:
    where = f"study.variants.{name}"
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"{where}: a variant's name may hold letters, digits, _ and . only (it names run folders)")
    if not isinstance(spec, Mapping) or "row" not in spec or set(spec) - {"row", "overrides", "seeds"}:
        raise ConfigError(f"{where} must be {{row: <row or [rows]>, overrides: [key=value, ...], seeds: N or [...]}}")
    overrides = spec.get("overrides") or []
    if isinstance(overrides, str) or not isinstance(overrides, Sequence):
        raise ConfigError(f"{where}.overrides={overrides} must be a list of train.py overrides")
    for text in overrides:
        override = parse_override(str(text), f"{where}.overrides")
        if override.is_sweep_override() or override.key_or_group in IDENTITY_KEYS:
            raise ConfigError(f"{where}.overrides: {text} cannot be set by a variant (one value each; not "
                              f"{', '.join(IDENTITY_KEYS)})")
    chosen = seeds if spec.get("seeds") is None else _seeds(spec["seeds"], f"{where}.seeds")
    return Variant(name, _rows(spec["row"], f"{where}.row"), tuple(str(t) for t in overrides), chosen)


def read_settings(study: DictConfig, task_overrides: Sequence[str]) -> Settings:
    """The checked settings of conf/study.yaml's `study` node, with the train.py overrides among `task_overrides`."""
    node = OmegaConf.to_container(study, resolve=True)
    max_epochs = _integer(node.get("max_epochs"), "study.max_epochs", 1)
    patience = node.get("patience")
    min_epochs = node.get("min_epochs")
    seeds = _seeds(node.get("seeds"), "study.seeds")
    variants = node.get("variants") or {}
    if not isinstance(variants, Mapping):
        raise ConfigError(f"study.variants={variants} must map each variant's name to {{row: ..., overrides: ...}}")
    return Settings(rows=_rows(node.get("rows"), "study.rows"), seeds=seeds, max_epochs=max_epochs,
                    patience=None if patience is None else _integer(patience, "study.patience", 1),
                    min_epochs=max_epochs // 3 if min_epochs is None else _integer(min_epochs, "study.min_epochs", 0),
                    beta=_beta(node.get("beta")),
                    variants=tuple(_variant(name, spec, seeds) for name, spec in variants.items()),
                    overrides=passthrough(task_overrides))
