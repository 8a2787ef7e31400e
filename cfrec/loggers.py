"""The W&B logger of `logger=default` / `logger=wandb`: offline unless WANDB_MODE says otherwise, one W&B run
per Hydra job, grouped by sweep and tagged by model, dataset and seed.

`wandb_logger` returns a plain `pytorch_lightning.loggers.WandbLogger`; it exists because (1) Lightning's
WandbLogger reuses a W&B run already open in the process, so in a sequential sweep every job after the
first would log into the first job's run unless that run is finished first, and (2) the group, name and
tags are derived from the Hydra job (sweep directory, row, seed) rather than written out in YAML.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf


def run_name(model: str | None, dataset: str | None, seed: Any, row: str | None = None) -> str:
    """`<row or model>-<dataset>-s<seed>`, e.g. `vae_vamp-ml-20m-s1`."""
    return f"{row or model or 'run'}-{dataset or 'data'}-s{seed}"


def sweep_group(run_mode: Any, sweep_dir: str | None, task_name: str | None) -> str | None:
    """`<task>-<sweep dir name>` for a job of a multirun (every job of one sweep shares it), None for a single run."""
    if "MULTIRUN" not in str(run_mode).upper() or not sweep_dir:
        return None
    name = Path(str(sweep_dir)).name
    return f"{task_name}-{name}" if task_name and task_name not in name else name


def wandb_logger(save_dir: str, project: str = "cfrec", mode: str | None = "offline", run_mode: Any = None,
                 sweep_dir: str | None = None, task_name: str | None = None, model: str | None = None,
                 dataset: str | None = None, seed: Any = None, row: str | None = None,
                 tags: list[str] | None = None, log_config: bool = True, **kwargs: Any):
    """A WandbLogger writing under `save_dir/wandb/` (offline: `offline-run-*/run-*.wandb`).

    mode: "offline" (default; upload later with `wandb sync`), "online" or "disabled"; the YAML reads it
    from WANDB_MODE. The run's composed config (`save_dir/.hydra/config.yaml`, unresolved) is logged as
    the W&B config when `log_config`.
    """
    import wandb
    from pytorch_lightning.loggers import WandbLogger

    if wandb.run is not None:  # left open by the previous job of this process (sequential launcher)
        wandb.finish()
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    all_tags = [str(t) for t in (tags or [])]
    all_tags += [f"model={model}", f"dataset={dataset}", f"seed={seed}"] + ([f"row={row}"] if row else [])
    config_file = Path(save_dir) / ".hydra" / "config.yaml"
    if log_config and "config" not in kwargs and config_file.is_file():
        kwargs["config"] = OmegaConf.to_container(OmegaConf.load(config_file), resolve=False)
    kwargs.setdefault("group", sweep_group(run_mode, sweep_dir, task_name))
    kwargs.setdefault("job_type", row or model)
    logger = WandbLogger(save_dir=save_dir, project=project or os.environ.get("WANDB_PROJECT", "cfrec"),
                         name=kwargs.pop("name", None) or run_name(model, dataset, seed, row),
                         tags=list(dict.fromkeys(all_tags)), mode=mode or "offline", **kwargs)
    init_args = getattr(logger, "_wandb_init", None)
    if isinstance(init_args, dict) and init_args.get("anonymous") is None:
        init_args.pop("anonymous", None)  # Lightning passes anonymous=None, which wandb ≥ 0.19 warns about
    return logger
