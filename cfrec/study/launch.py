"""Launching a study's train.py jobs as one Hydra multirun through the configured launcher.

Hydra's sweepers launch the Cartesian product of their overrides; a study launches an explicit list (the runs still
missing, each with its own row, seed, β and folder), so it composes the multirun's config itself and hands the list
to the launcher (`hydra/launcher=basic` (the default), `joblib`, `submitit_local`, `submitit_slurm`, `slurm`), as
Hydra's own multirun does. Each job is `python train.py` with its overrides (train.main), named by its own
`hydra.sweep.subdir`, so its folder, `.hydra/` and train.log are those of a hand-made sweep's job.
"""

from __future__ import annotations

import logging.config
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from cfrec.config import PROJECT_ROOT


def train_job(cfg: DictConfig) -> float:
    """One job: what `python train.py` runs on `cfg` (train.main, imported from the checkout), logging warnings as
    train.py's entry point does."""
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    import train

    logging.captureWarnings(True)
    return train.main(cfg)


def quoted(key: str, value: Any) -> str:
    """`key='value'`: an override whose value Hydra reads as the string it is (a path with spaces or commas); in
    Hydra's quoted strings a backslash is literal but before a quote or at the end, where it is doubled."""
    text = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", str(value))
    text = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, text)
    return f"{key}='{text}'"


def launch(jobs: Sequence[tuple[str, Sequence[str]]], sweep_dir: Path, overrides: Sequence[str],
           hydra_overrides: Sequence[str], study_logging: dict[str, Any]) -> None:
    """Run `jobs` ((folder name, train.py overrides) each) in `sweep_dir`/<name> as one multirun of the launcher that
    `hydra_overrides` configure; `overrides` (every job's shared ones) complete the launcher's config (a SLURM
    launcher reads trainer.devices). The study's own logging (`study_logging`, a dictConfig) is restored after."""
    from hydra._internal.callbacks import Callbacks
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.plugins import Plugins
    from hydra.types import HydraContext, RunMode

    hydra = GlobalHydra.instance().hydra
    settings = [*hydra_overrides, quoted("hydra.sweep.dir", sweep_dir), "hydra.job.name=train", "hydra.mode=MULTIRUN"]
    cfg = hydra.compose_config("train", [*overrides, *settings], run_mode=RunMode.MULTIRUN)
    callbacks = Callbacks(cfg)
    launcher = Plugins.instance().instantiate_launcher(
        config=cfg, hydra_context=HydraContext(config_loader=hydra.config_loader, callbacks=callbacks),
        task_function=train_job)
    callbacks.on_multirun_start(config=cfg, config_name="train")
    try:
        launcher.launch([[*job, quoted("hydra.sweep.subdir", name)] for name, job in jobs], initial_job_idx=0)
        callbacks.on_multirun_end(config=cfg, config_name="train")
    finally:
        logging.config.dictConfig(study_logging)
