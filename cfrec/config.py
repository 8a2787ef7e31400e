"""Hydra/OmegaConf helpers shared by `train.py`, `python -m cfrec.data` and the tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cfrec.device import auto_precision
from cfrec.errors import ConfigError

if TYPE_CHECKING:
    from cfrec.data.datamodule import CFDataModule

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "conf"


def preset_anneal_fraction(total_anneal_steps: int | None, preset_fraction: float | None) -> float | None:
    """`beta.anneal_fraction` by default: the dataset preset's `budget.anneal_fraction`, unless
    `beta.total_anneal_steps` was set (then that fixed ramp is used, as Liang's on ML-20M)."""
    return preset_fraction if total_anneal_steps is None else None


def register_resolvers() -> None:
    """`${project_root:}`, `${auto_precision:}` and `${preset_anneal_fraction:...}` for the YAML files (idempotent)."""
    for name, fn in (("project_root", lambda: str(PROJECT_ROOT)), ("auto_precision", auto_precision),
                     ("preset_anneal_fraction", preset_anneal_fraction)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


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
    beta = resolved.get("beta") if isinstance(resolved, dict) and not prefix else None
    if isinstance(beta, dict) and str(beta.get("_target_", "")).endswith(".Anneal"):
        if beta.get("total_anneal_steps") is None and beta.get("anneal_fraction") is None:
            raise ConfigError("beta.total_anneal_steps and beta.anneal_fraction are both null; set one of them")
        for key in ("cap", "total_anneal_steps", "anneal_fraction"):
            value = beta.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                raise ConfigError(f"beta.{key}={value} must be a positive number")


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


register_resolvers()
