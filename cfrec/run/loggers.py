"""cfrec's experiment loggers: the W&B logger of `logger=default` / `logger=wandb` (offline unless WANDB_MODE says
otherwise, one W&B run per training run, named and tagged by what differs within its sweep, grouped by sweep, with
the resolved config) and the CSV logger that keeps the epochs of earlier attempts.

`wandb_logger` returns a plain `pytorch_lightning.loggers.WandbLogger`; it exists because (1) Lightning's
WandbLogger reuses a W&B run already open in the process, so in a sequential sweep every job after the
first would log into the first job's run unless that run is finished first, (2) the group, name, tags
and config are derived from the Hydra job (sweep directory, swept keys, choices, resolved config) rather
than written out in YAML, and (3) every attempt of a run uses the run's one W&B id (cfrec.run.wandb_offline).
`WandbSummary` (a callback) adds the best epoch to the run's summary, beside the test metrics Lightning logs
there. `CSVLogger` appends to `csv/metrics.csv` instead of deleting it; `resume_logs` lines both loggers up with
the checkpoint a run resumes from.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import OmegaConf
from pytorch_lightning.loggers import CSVLogger as LightningCSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter

from cfrec.errors import ConfigError
from cfrec.io import atomic_write_bytes
from cfrec.run import wandb_offline
from cfrec.run.naming import override_values, swept_keys
from cfrec.run.record import RunRecord

log = logging.getLogger(__name__)

# keys whose value alone names the choice in a run name (`mult-logistic-...`); others read `key=value`
_BARE_KEYS = ("row", "model", "likelihood", "prior")
# keys always in the name on their own (`...-<dataset>-s<seed>`)
_NAME_KEYS = ("row", "model", "dataset", "seed")
# a single run's overrides under these are not in its name: the dataset's name stands for its options (data path,
# separator, header, ...), which the run's config keeps
_UNNAMED = ("dataset.", "paths.")
MAX_TAG = 64  # W&B's limit on a tag's length


def distinguishing(overrides: Iterable[str] | None, keys: Iterable[str] | None,
                   exclude: Iterable[str] = ()) -> dict[str, str]:
    """`key: short value` of this job's overrides whose key is in `keys` (None, a single run: every key except
    `exclude`, `dataset.*` and `paths.*`), without `hydra.*`, the keys always in the name, and values that do not
    belong in a name (paths, blanks, long values: cfrec.run.naming.short_value)."""
    values = override_values(overrides or [], keys, [*exclude, *_NAME_KEYS])
    return {k: v for k, v in values.items() if keys is not None or not k.startswith(_UNNAMED)}


def run_tags(tags: Iterable[Any], generated: Iterable[str]) -> list[str]:
    """The W&B tags: the user's `tags` (ConfigError if one is longer than W&B's 64 characters, rather than cut)
    and cfrec's `key=value` tags, shortened to the key's last part when too long, left out if still too long."""
    too_long = [str(t) for t in tags if len(str(t)) > MAX_TAG]
    if too_long:
        raise ConfigError(f"tags: {too_long[0]!r} is longer than the {MAX_TAG} characters W&B allows in a tag")
    out = [str(t) for t in tags]
    for tag in generated:
        if len(tag) > MAX_TAG:
            key, _, value = tag.partition("=")
            tag = f"{key.rsplit('.', 1)[-1]}={value}"
        if len(tag) <= MAX_TAG:
            out.append(tag)
    return list(dict.fromkeys(out))


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
    short value (`likelihood`, `beta.cap`, ...; in a single run, the command line's overrides except
    `exclude_keys`, `dataset.*` and `paths.*`), dataset name and seed; a path, a blank or a long value is never
    in a name or tag (the config holds it); tags also name the VAE's parts (`likelihood=`, `prior=`, `beta=`).
    The W&B config is the resolved config plus `choices` (the config group options) when `log_config`.
    The run id is the run folder's own (`wandb/cfrec-run-id`), the same in every attempt of a resumed run.
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
    generated = [f"model={model}", f"dataset={dataset}", f"seed={seed}"] + ([f"row={row}"] if row else [])
    generated += [f"{part}={choices[part]}" for part in ("likelihood", "prior", "beta") if vae and part in choices]
    generated += [f"{key}={value}" for key, value in differs.items()]
    all_tags = run_tags(tags or [], generated)
    if config is not None:
        kwargs["config"] = {**config, "choices": choices, "overrides": [str(o) for o in overrides or []]}
    kwargs.setdefault("group", sweep_group(run_mode, sweep_dir, task_name))
    kwargs.setdefault("job_type", row or model)
    if "settings" not in kwargs and not {"WANDB_SILENT", "WANDB_QUIET"} & set(os.environ):
        kwargs["settings"] = wandb.Settings(silent=True)  # its banner and run summary would flood the console
    name = kwargs.pop("name", None) or run_name(model, dataset, seed, row, differs)
    kwargs.setdefault("id", wandb_offline.run_id(save_dir))  # every attempt of this run logs to one W&B run
    logger = WandbLogger(save_dir=save_dir, project=project or os.environ.get("WANDB_PROJECT", "cfrec"),
                         name=name, tags=all_tags, mode=mode or "offline", **kwargs)
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
        records = [cb for cb in trainer.callbacks if isinstance(cb, RunRecord)]
        history = records[0].history if records else None
        loggers = [lg for lg in trainer.loggers if type(lg).__name__ == "WandbLogger"]
        if not history or not loggers or not trainer.is_global_zero:
            return
        best = max(history, key=lambda h: h["ndcg@100"])  # the first of equals, as ModelCheckpoint keeps
        summary = {"best_epoch": int(best["epoch"]),
                   **{f"best/val_{k}": float(v) for k, v in best.items() if k != "epoch"}}
        for lg in loggers:
            lg.experiment.summary.update(summary)


def finish_wandb(loggers: list[Any], ok: bool) -> None:
    """Close this run's W&B run (offline or online) so the next job of a sequential sweep gets its own; an offline
    run's earlier attempts, whose history it holds, then move to `wandb/superseded/` (cfrec.run.wandb_offline)."""
    wandb_loggers = [lg for lg in loggers if type(lg).__name__ == "WandbLogger"]
    if not wandb_loggers:
        return
    import wandb

    run = wandb.run
    wandb.finish(exit_code=0 if ok else 1)
    for lg in wandb_loggers:
        if run is not None and run.offline and lg._experiment is run:
            current = Path(run.dir).parent
            wandb_offline.supersede(current.parent, run.id, current)


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer, appending to an existing `metrics.csv` (Lightning's own deletes it)."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = next(csv.reader(file), [])  # the header, so that new rows line up with it


class CSVLogger(LightningCSVLogger):
    """Lightning's CSVLogger (`<save_dir>/<name>/metrics.csv`) that keeps what earlier attempts of the run wrote:
    a resumed run's file holds every epoch (`resume_logs` drops the rows of epochs that are trained again)."""

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment

    def keep_epochs(self, last: int) -> int:
        """Drop the rows of epochs after `last` (0-based; rows without an epoch stay); returns how many were kept."""
        path = Path(self.log_dir) / ExperimentWriter.NAME_METRICS_FILE
        if not path.is_file():
            return 0
        with path.open(newline="") as file:
            reader = csv.DictReader(file)
            fields, rows = reader.fieldnames or [], list(reader)
        kept = [row for row in rows if not row.get("epoch") or float(row["epoch"]) <= last]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)
        atomic_write_bytes(path, buffer.getvalue().encode())
        return len(kept)


def resume_logs(loggers: list[Any], epoch: int) -> None:
    """Line the loggers up with a checkpoint of the end of `epoch` (0-based) that training resumes from: the CSV
    keeps the rows up to that epoch (the later ones are trained, so logged, again); an offline W&B run, new in
    each attempt, first logs what the earlier attempts logged up to that epoch."""
    for lg in loggers:
        if isinstance(lg, CSVLogger):
            lg.keep_epochs(epoch)
        elif type(lg).__name__ == "WandbLogger" and epoch >= 0 and lg.experiment.offline:
            replayed = wandb_offline.replay(lg.experiment, Path(lg.experiment.dir).parent.parent, epoch)
            if replayed:
                log.info("W&B run %s: %d rows of the earlier attempts logged again", lg.experiment.id, replayed)
