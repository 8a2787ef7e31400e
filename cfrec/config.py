"""Hydra/OmegaConf helpers shared by `train.py`, `python -m cfrec.data` and the tests, and the config side of the
models: building one from its config and describing its parts in a checkpoint (the models import torch alone)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cfrec.errors import ConfigError
from cfrec.run.device import auto_precision
from cfrec.run.naming import job_dir

if TYPE_CHECKING:
    from cfrec.data.datamodule import CFDataModule

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "conf"


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as dotted key -> leaf (`{"encoder": {"dropout": 0.5}}` -> `{"encoder.dropout": 0.5}`); an
    empty mapping inside is a leaf of its own, `{}`."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def setting_changes(stored: Mapping[str, Any], current: Mapping[str, Any],
                    agree: Callable[[str, Any, Any], bool] | None = None) -> list[str]:
    """`key: stored -> current` for each setting that differs, by dotted key. A key absent on one side, or an empty
    node, counts as null, so an option added to cfrec since (null, off by default) changes nothing; `agree(key, a, b)`
    says where two values count as the same anyway (a β cap within tolerance, a key that may move)."""
    old, new = flatten(stored), flatten(current)
    diffs = []
    for key in sorted(old.keys() | new.keys()):
        a, b = (None if v == {} else v for v in (old.get(key), new.get(key)))
        if a != b and not (agree and agree(key, a, b)):
            diffs.append(f"{key}: {a!r} -> {b!r}")
    return diffs


def preset_anneal_fraction(total_anneal_steps: int | None, preset_fraction: float | None) -> float | None:
    """`beta.anneal_fraction` by default: the dataset preset's `budget.anneal_fraction`, unless
    `beta.total_anneal_steps` was set (then that fixed ramp is used, as Liang's on ML-20M)."""
    return preset_fraction if total_anneal_steps is None else None


def table_rows(table: str) -> str:
    """`${table_rows:table3}`: the rows whose file's `report.tables` names the table, in the paper's order, as a
    sweep's list (`mult_vae,multinomial,logistic`); what experiment=table2 / table3 sweep over `row`."""
    from cfrec.report.rows import table_rows as tagged  # imported here: cfrec.report reads conf/ through this module

    return ",".join(tagged(table))


def sweeper_params() -> dict[str, Any] | None:
    """`${sweeper_params:}`: the running sweep's `hydra.sweeper.params`, their values resolved (`${hydra:...}` hands
    over Hydra's read-only node, whose interpolations, such as a preset's `${table_rows:...}`, cannot be resolved
    inside another node)."""
    from hydra.core.hydra_config import HydraConfig

    params = HydraConfig.get().sweeper.get("params")
    return OmegaConf.to_container(params, resolve=True) if params is not None else None


def register_resolvers() -> None:
    """`${project_root:}`, `${auto_precision:}`, `${preset_anneal_fraction:...}`, `${job_dir:...}` (a sweep's job
    folder name, cfrec.run.naming), `${table_rows:...}` and `${sweeper_params:}` for the YAML files (idempotent)."""
    for name, fn in (("project_root", lambda: str(PROJECT_ROOT)), ("auto_precision", auto_precision),
                     ("preset_anneal_fraction", preset_anneal_fraction), ("job_dir", job_dir),
                     ("table_rows", table_rows), ("sweeper_params", sweeper_params)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


#: what a dataset preset's `budget` may hold (read by conf/trainer, conf/callbacks and conf/beta/anneal.yaml)
BUDGET_KEYS = ("epochs", "patience", "anneal_steps", "anneal_fraction")

# an example value for an option that a preset leaves to the user (`???`)
_EXAMPLES = {"dataset.format": "triplets", "dataset.raw_path": "ratings.csv", "dataset.heldout_users": "100"}


def _missing(node: Any, prefix: str) -> Iterator[str]:
    """Full keys of the mandatory (`???`) values under an unresolved container."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        path = f"{prefix}.{key}" if prefix else str(key)
        if value == "???":
            yield path
        else:
            yield from _missing(value, path)


def check_config(cfg: DictConfig, prefix: str = "") -> None:
    """Raise ConfigError (one line naming the option) for a mandatory option left unset or a value that
    does not resolve; `prefix` is the key of `cfg` in the full config (e.g. "dataset")."""
    missing = list(_missing(OmegaConf.to_container(cfg, resolve=False), prefix))
    if missing:
        example = " ".join(f"{key}={_EXAMPLES.get(key, '...')}" for key in missing)
        raise ConfigError(f"{', '.join(missing)} must be set on the command line, e.g. {example}")
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as error:
        key = ".".join(filter(None, (prefix, getattr(error, "full_key", "") or "")))
        message = str(getattr(error, "msg", error)).splitlines()[0]
        raise ConfigError(f"{key}: {message}" if key else message) from None
    dataset = resolved if prefix == "dataset" else resolved.get("dataset") if not prefix else None
    _check_budget((dataset or {}).get("budget") if isinstance(dataset, dict) else None)
    beta = resolved.get("beta") if isinstance(resolved, dict) and not prefix else None
    if isinstance(beta, dict) and str(beta.get("_target_", "")).endswith(".Anneal"):
        if beta.get("total_anneal_steps") is None and beta.get("anneal_fraction") is None:
            raise ConfigError("beta.total_anneal_steps and beta.anneal_fraction are both null; set one of them")
        for key in ("cap", "total_anneal_steps", "anneal_fraction"):
            value = beta.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                raise ConfigError(f"beta.{key}={value} must be a positive number")


def _check_budget(budget: Any) -> None:
    """ConfigError for a `dataset.budget` key nothing reads; a β cap there names where β is set instead."""
    for key in budget or {}:
        if key == "beta_cap":
            raise ConfigError("dataset.budget.beta_cap is not read: β's cap is beta.cap (Liang's 0.2 by default) or "
                              "the β a study's own search chose (python -m cfrec.study)")
        if key not in BUDGET_KEYS:
            raise ConfigError(f"dataset.budget.{key} is not a budget key (one of: {', '.join(BUDGET_KEYS)})")


def compose_config(overrides: list[str], job_name: str) -> DictConfig:
    """`conf/train.yaml` composed with command-line overrides outside a Hydra run (the `python -m` tools)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR), job_name=job_name):
        return compose("train", overrides=overrides, return_hydra_config=False)


def prepared_dataset(overrides: list[str], job_name: str) -> tuple[DictConfig, CFDataModule]:
    """(composed config, datamodule with its split prepared) of the dataset the overrides select."""
    from hydra.utils import instantiate

    cfg = compose_config(overrides, job_name)
    dm = instantiate(cfg.dataset)
    dm.setup()
    return cfg, dm


# --- models from their configs, and back -------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Configs, partials and dataclass parts as nested plain dicts and lists (checkpoint- and YAML-safe)."""
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, functools.partial) or (dataclasses.is_dataclass(value) and not isinstance(value, type)):
        return part_config(value)
    return value


def part_config(part: Any) -> dict[str, Any]:
    """A `_target_` config that rebuilds `part`: a config, a keyword-only partial, or a dataclass part."""
    if isinstance(part, Mapping):
        return _plain(part)
    if isinstance(part, functools.partial) and not part.args:
        target = f"{part.func.__module__}.{part.func.__qualname__}"
        return {"_target_": target, "_partial_": True, **_plain(part.keywords)}
    if dataclasses.is_dataclass(part) and not isinstance(part, type):
        target = f"{type(part).__module__}.{type(part).__qualname__}"
        init_fields = [f.name for f in dataclasses.fields(part) if f.init]
        return {"_target_": target, **{name: _plain(getattr(part, name)) for name in init_fields}}
    raise TypeError(f"cannot describe {part!r} as a config: pass a _target_ config, a partial or a dataclass")


def build_model(model: Any, n_items: int) -> Any:
    """`model` (a `_target_` config, e.g. cfg.model) built for `n_items` items. A LightningModule that saves no
    hyperparameters of its own (the VAE, whose parts arrive built) keeps its config as its hyperparameters, so
    that its checkpoints say what made them and `load_model` rebuilds it."""
    from hydra.utils import instantiate

    config = {**part_config(model), "n_items": n_items}
    built = instantiate(config, _convert_="all")  # plain lists/dicts: checkpoint-safe
    if hasattr(built, "save_hyperparameters") and not built.hparams:
        built.save_hyperparameters(config)
    return built


def load_model(checkpoint_path: str | Path) -> Any:
    """The model of a Lightning checkpoint written by a cfrec run: rebuilt from the config in its hyperparameters
    (`build_model`), with its weights and its parts' state (a β search's curve) restored."""
    import torch

    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
    config = checkpoint.get("hyper_parameters") or {}
    if "_target_" not in config:
        raise ConfigError(f"{checkpoint_path}: its hyperparameters hold no _target_ config (not a cfrec run's "
                          "checkpoint); use the model class's load_from_checkpoint")
    model = build_model(config, config["n_items"])
    model.load_state_dict(checkpoint["state_dict"])
    model.on_load_checkpoint(checkpoint)
    return model


register_resolvers()
