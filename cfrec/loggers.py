"""The W&B logger of `logger=default` / `logger=wandb`: offline unless WANDB_MODE says otherwise, one W&B run
per Hydra job, named and tagged by what differs within its sweep, grouped by sweep, with the resolved config.

`wandb_logger` returns a plain `pytorch_lightning.loggers.WandbLogger`; it exists because (1) Lightning's
WandbLogger reuses a W&B run already open in the process, so in a sequential sweep every job after the
first would log into the first job's run unless that run is finished first, and (2) the group, name, tags
and config are derived from the Hydra job (sweep directory, swept keys, choices, resolved config) rather
than written out in YAML. `WandbSummary` (a callback) adds the best epoch to the run's summary, beside the
test metrics Lightning logs there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import OmegaConf

log = logging.getLogger(__name__)

# keys whose value alone names the choice in a run name (`mult-logistic-...`); others read `key=value`
_BARE_KEYS = ("row", "model", "likelihood", "prior")
# keys always in the name on their own (`...-<dataset>-s<seed>`)
_NAME_KEYS = ("row", "model", "dataset", "seed")
_MAX_TAG = 64  # W&B's limit on a tag's length


def _parse(overrides: Iterable[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_overrides([str(o) for o in overrides])


def swept_keys(sweep_dir: str | None, sweeper_params: Mapping[str, Any] | None) -> list[str]:
    """The keys a multirun sweeps: the sweeper's `params` (presets, Optuna) and the command line's sweeps
    (`model=mult,sivae`), read from the sweep's `multirun.yaml` (written by Hydra's basic sweeper)."""
    args = [f"{k}={v}" for k, v in (sweeper_params or {}).items()]
    multirun = Path(str(sweep_dir)) / "multirun.yaml" if sweep_dir else None
    if multirun is not None and multirun.is_file():
        task = OmegaConf.select(OmegaConf.load(multirun), "hydra.overrides.task", default=None)
        args += [str(a) for a in task or []]
    keys = [o.key_or_group for o in _parse(args) if o.is_sweep_override()]
    return list(dict.fromkeys(keys))


def distinguishing(overrides: Iterable[str] | None, keys: Iterable[str] | None,
                   exclude: Iterable[str] = ()) -> dict[str, str]:
    """`key: value` of this job's overrides whose key is in `keys` (None: every key except `exclude`,
    `hydra.*` and the keys always in the name)."""
    wanted = None if keys is None else set(keys)
    skipped = set(exclude) | set(_NAME_KEYS)
    out: dict[str, str] = {}
    for override in _parse(overrides or []):
        key = override.key_or_group
        if key.startswith("hydra.") or key.startswith("hydra/"):
            continue
        if (wanted is not None and key in wanted and key not in _NAME_KEYS) or (wanted is None and key not in skipped):
            out[key] = override.value() if isinstance(override.value(), str) else str(override.value())
    return out


def run_name(model: str | None, dataset: str | None, seed: Any, row: str | None = None,
             differs: Mapping[str, str] | None = None) -> str:
    """`<row or model>[-<what differs>...]-<dataset>-s<seed>`, e.g. `mult-logistic-synthetic-s1`,
    `vae_vamp-ml-20m-s1`, `mult-logistic-beta=zero-ml-1m-s2`."""
    parts = [row or model or "run"]
    parts += [value if key in _BARE_KEYS else f"{key}={value}" for key, value in (differs or {}).items()]
    return "-".join([*parts, dataset or "data", f"s{seed}"])


def sweep_group(run_mode: Any, sweep_dir: str | None, task_name: str | None) -> str | None:
    """`<task>-<sweep dir name>` for a job of a multirun (every job of one sweep shares it), None for a single run."""
    if "MULTIRUN" not in str(run_mode).upper() or not sweep_dir:
        return None
    name = Path(str(sweep_dir)).name
    return f"{task_name}-{name}" if task_name and task_name not in name else name


def resolved_config(save_dir: str | Path) -> dict[str, Any] | None:
    """The run's composed config (`<run dir>/.hydra/config.yaml`) with every interpolation resolved, i.e.
    the values that ran (`trainer.precision: 32-true`, not `${auto_precision:}`); unresolved if that fails."""
    config_file = Path(save_dir) / ".hydra" / "config.yaml"
    if not config_file.is_file():
        return None
    config = OmegaConf.load(config_file)
    try:
        return OmegaConf.to_container(config, resolve=True)
    except Exception as error:  # e.g. outside the Hydra job that wrote it (`${hydra:...}` cannot resolve)
        log.warning("W&B config left unresolved (%s)", error)
        return OmegaConf.to_container(config, resolve=False)


def wandb_logger(save_dir: str, project: str = "cfrec", mode: str | None = "offline", run_mode: Any = None,
                 sweep_dir: str | None = None, task_name: str | None = None, model: str | None = None,
                 dataset: str | None = None, seed: Any = None, row: str | None = None,
                 tags: list[str] | None = None, log_config: bool = True, choices: Mapping[str, Any] | None = None,
                 overrides: list[str] | None = None, sweeper_params: Mapping[str, Any] | None = None,
                 exclude_keys: list[str] | None = None, **kwargs: Any):
    """A WandbLogger writing under `save_dir/wandb/` (offline: `offline-run-*/run-*.wandb`).

    mode: "offline" (default; upload later with `wandb sync`), "online" or "disabled"; the YAML reads it
    from WANDB_MODE. Name and tags carry what differs within the sweep: the row or model, every swept key's
    value (`likelihood`, `beta.cap`, ...; in a single run, the command line's overrides except
    `exclude_keys`), dataset and seed; tags also name the VAE's parts (`likelihood=`, `prior=`, `beta=`).
    The W&B config is the resolved config plus `choices` (the config group options) when `log_config`.
    W&B's console messages are silenced (WANDB_SILENT / WANDB_QUIET in the environment take precedence).
    """
    import wandb
    from pytorch_lightning.loggers import WandbLogger

    if wandb.run is not None:  # left open by the previous job of this process (sequential launcher)
        wandb.finish()
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    multirun = "MULTIRUN" in str(run_mode).upper()
    keys = swept_keys(sweep_dir, sweeper_params) if multirun else None
    differs = distinguishing(overrides, keys, exclude_keys or ())
    config = resolved_config(save_dir) if log_config and "config" not in kwargs else None
    choices = dict(choices or {})
    vae = isinstance(config, dict) and isinstance(config.get("model"), dict) and "likelihood" in config["model"]
    all_tags = [str(t) for t in (tags or [])]
    all_tags += [f"model={model}", f"dataset={dataset}", f"seed={seed}"] + ([f"row={row}"] if row else [])
    all_tags += [f"{part}={choices[part]}" for part in ("likelihood", "prior", "beta") if vae and part in choices]
    all_tags += [f"{key}={value}" for key, value in differs.items()]
    if config is not None:
        kwargs["config"] = {**config, "choices": choices, "overrides": [str(o) for o in overrides or []]}
    kwargs.setdefault("group", sweep_group(run_mode, sweep_dir, task_name))
    kwargs.setdefault("job_type", row or model)
    if "settings" not in kwargs and not {"WANDB_SILENT", "WANDB_QUIET"} & set(os.environ):
        kwargs["settings"] = wandb.Settings(silent=True)  # its banner and run summary would flood the console
    name = kwargs.pop("name", None) or run_name(model, dataset, seed, row, differs)
    logger = WandbLogger(save_dir=save_dir, project=project or os.environ.get("WANDB_PROJECT", "cfrec"),
                         name=name, tags=[t[:_MAX_TAG] for t in dict.fromkeys(all_tags)], mode=mode or "offline",
                         **kwargs)
    init_args = getattr(logger, "_wandb_init", None)
    if isinstance(init_args, dict) and init_args.get("anonymous") is None:
        init_args.pop("anonymous", None)  # Lightning passes anonymous=None, which wandb ≥ 0.19 warns about
    log.info("W&B run %s (%s%s) in %s", name, mode or "offline",
             f", group {kwargs['group']}" if kwargs.get("group") else "", Path(save_dir) / "wandb")
    return logger


class WandbSummary(pl.Callback):
    """Adds `best_epoch` (0-based, the epoch tested) and its validation metrics to the W&B run's summary,
    which already holds the test metrics; does nothing without a W&B logger."""

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        history = getattr(pl_module, "history", None)
        loggers = [lg for lg in trainer.loggers if type(lg).__name__ == "WandbLogger"]
        if not history or not loggers or not trainer.is_global_zero:
            return
        best = max(history, key=lambda h: h["ndcg@100"])  # the first of equals, as ModelCheckpoint keeps
        summary = {"best_epoch": int(best["epoch"]),
                   **{f"best/val_{k}": float(v) for k, v in best.items() if k != "epoch"}}
        for lg in loggers:
            lg.experiment.summary.update(summary)
