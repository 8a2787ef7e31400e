"""The runs of a study: what each one's train.py overrides are, and whether its folder holds it (stages 2 and 3).

A run folder holds a planned run when its metrics.json says `status: ok`, it ran on the study's split (the same
counts, and the same `split_fingerprint` where train.py wrote one) and its resolved config has the values the run's
overrides give (`identity`): seed, row, variant, the model (every part: likelihood, prior, β schedule, network), β,
the split options, the budget (epochs, patience, minimum epochs) and every other key=value override. Values are
compared, not override strings, so a run made by hand with `python train.py` and the same settings counts; an
annealed run's β cap counts as the study's when it is within half the β search's resolution (its β moves by
1 / max_epochs per epoch), so a cap rounded to 0.723 is the search's 0.72333.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from cfrec.config import CONFIG_DIR, setting_changes
from cfrec.errors import ConfigError
from cfrec.study.record import read_json
from cfrec.study.settings import Settings, Variant

#: every run's config keys compared with the study's (besides each key=value override's own key)
IDENTITY = ("seed", "row", "variant", "tune", "model", "beta", "dataset", "trainer.max_epochs",
            "callbacks.early_stopping.patience", "callbacks.early_stopping.min_epochs")
#: keys whose value does not change a run's result: where files go, loggers, the dataset's file and cache paths,
#: its evaluation batch size and its preset's budget (whose effects are compared where they land)
FREE = ("paths", "logger", "hydra", "dataset.cache_dir", "dataset.raw_path", "dataset.eval_batch_size",
        "dataset.budget")
#: a run whose log or checkpoint was written this recently (seconds) and has not finished is running
ACTIVE_S = 900

DONE, RUNNING, FAILED, TODO, CONFLICT = "done", "running", "failed", "to do", "conflict"
#: a running run's detail when its job was submitted by a study command killed before it ended, and has not started
QUEUED = "not started: submitted by a study command that was killed; it may wait in the cluster's queue"


@dataclass(frozen=True)
class PlannedRun:
    """One train.py job of the study: its folder (relative to study.dir), row, variant, seed and overrides."""

    path: str
    row: str
    variant: str | None
    seed: int
    overrides: tuple[str, ...]
    annealed: bool = False

    @property
    def name(self) -> str:
        return Path(self.path).name


@dataclass(frozen=True)
class RunState:
    """Where a planned run stands: done, running, failed, to do, or conflict (its folder holds another run)."""

    run: PlannedRun
    state: str
    detail: str = ""
    seconds: float | None = None  # a finished run's train_seconds
    started: float | None = None  # when a running run was launched (its .hydra/config.yaml's mtime)


@contextmanager
def composing() -> Iterator[None]:
    """A Hydra to compose conf/train.yaml with: the running app's (python -m cfrec.study), else one for this block."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        yield
        return
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3", job_name="study"):
        yield


@functools.cache
def _composed(overrides: tuple[str, ...]) -> DictConfig:
    from hydra import compose

    return compose("train", overrides=list(overrides))


def compose_run(overrides: Sequence[str], where: str) -> DictConfig:
    """conf/train.yaml with `overrides` (inside `composing()`; composed once per process, as the files do not
    change under a study); ConfigError naming `where` the overrides came from."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        return _composed(tuple(overrides))
    except (HydraException, OmegaConfBaseException) as error:
        raise ConfigError(f"{where}: {' '.join(overrides)} does not compose ({str(error).splitlines()[0]})") from None


def anneals(cfg: DictConfig) -> bool:
    """Whether the model of `cfg` trains with an annealed β (it takes beta.cap and beta.total_anneal_steps)."""
    beta = cfg.model.get("beta") if "beta" in cfg.model else None
    return isinstance(beta, DictConfig) and str(beta.get("_target_", "")).endswith(".Anneal")


def annealing(settings: Settings) -> Callable[[str, Variant | None], bool]:
    """Whether a row (with a variant's overrides) anneals β in this study, composed once per row and variant."""
    cache: dict[tuple[str, str | None], bool] = {}

    def annealed(row: str, variant: Variant | None) -> bool:
        key = (row, variant.name if variant else None)
        if key not in cache:
            overrides = [f"+row={row}", *settings.overrides, *(variant.overrides if variant else ())]
            with composing():
                cache[key] = anneals(compose_run(overrides, f"study.variants.{key[1]}" if variant else "study.rows"))
        return cache[key]

    return annealed


def budget(settings: Settings) -> list[str]:
    """The budget overrides of every row × seed run."""
    patience = "null" if settings.patience is None else settings.patience
    return [f"trainer.max_epochs={settings.max_epochs}", f"callbacks.early_stopping.patience={patience}",
            f"callbacks.early_stopping.min_epochs={settings.min_epochs}"]


def search_run(settings: Settings, anneal_steps: int) -> PlannedRun:
    """The β search: Mult-VAE with β annealed from 0 to 1 over the whole budget, no early stopping, the first seed."""
    seed = settings.seeds[0]
    return PlannedRun("beta_search", "beta_search", None, seed, (
        "+row=beta_search", f"seed={seed}", *settings.overrides, f"beta.total_anneal_steps={anneal_steps}",
        "beta.max_beta=1.0", f"trainer.max_epochs={settings.max_epochs}", "callbacks.early_stopping.patience=null"))


def plan(settings: Settings, beta: float | None, anneal_steps: int,
         annealed: Callable[[str, Variant | None], bool]) -> list[PlannedRun]:
    """Every row × seed run and every variant's, seed by seed; an annealed row's overrides carry the β cap and
    ramp (only once β is known: `beta` None leaves them out)."""
    jobs = [(seed, row, None) for seed in settings.seeds for row in settings.rows]
    jobs += [(seed, row, v) for v in settings.variants for seed in v.seeds for row in v.rows]
    runs = []
    for seed, row, variant in jobs:
        ramp = annealed(row, variant)
        beta_overrides = [f"beta.cap={beta}", f"beta.total_anneal_steps={anneal_steps}"] if ramp and beta else []
        extra = [f"variant={variant.name}", *variant.overrides] if variant else []
        name = f"{row}-{variant.name}_s{seed}" if variant else f"{row}_s{seed}"
        overrides = (f"+row={row}", f"seed={seed}", *settings.overrides, *budget(settings), *beta_overrides, *extra)
        runs.append(PlannedRun(f"runs/{name}", row, variant.name if variant else None, seed, overrides, ramp))
    return runs


def _free(key: str) -> bool:
    return any(key == f or key.startswith(f"{f}.") for f in FREE)


def compared_keys(overrides: Sequence[str]) -> list[str]:
    """IDENTITY plus the key of each key=value override outside it (config groups land in IDENTITY's nodes)."""
    from cfrec.study.settings import parse_override

    keys = list(IDENTITY)
    for text in overrides:
        override = parse_override(text, "a run's overrides")
        key = override.key_or_group
        group = (CONFIG_DIR / key.replace(".", "/")).is_dir()
        if not (group or override.is_delete() or _free(key) or any(key.startswith(f"{k}.") for k in keys)):
            keys.append(key)
    return keys


def _select(config: Any, key: str) -> Any:
    """The resolved value at dotted `key` of a composed config or of a stored (plain) one; None when absent."""
    if isinstance(config, DictConfig):
        value = OmegaConf.select(config, key, default=None)
        return OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value
    for part in key.split("."):
        if not isinstance(config, Mapping):
            return None
        config = config.get(part)
    return config


def identity(config: Any, keys: Sequence[str]) -> dict[str, Any]:
    """The values at `keys` of a config (composed or stored), without the result-free dataset options."""
    values = {key: _select(config, key) for key in keys}
    if isinstance(values.get("dataset"), dict):
        values["dataset"] = {k: v for k, v in values["dataset"].items() if not _free(f"dataset.{k}")}
    return values


def expected(runs: Sequence[PlannedRun]) -> dict[str, dict[str, Any]]:
    """Each planned run's identity, by folder: composed once per run without its seed, then per seed."""
    out: dict[str, dict[str, Any]] = {}
    composed: dict[tuple[str, ...], DictConfig] = {}
    with composing():
        for run in runs:
            unseeded = tuple(o for o in run.overrides if not o.startswith("seed="))
            if unseeded not in composed:
                composed[unseeded] = compose_run(unseeded, run.path)
            cfg = composed[unseeded]
            cfg.seed = run.seed
            out[run.path] = identity(cfg, compared_keys(run.overrides))
    return out


def changes(stored: Mapping[str, Any], wanted: Mapping[str, Any], beta_tolerance: float) -> list[str]:
    """`key: stored -> wanted` for each value that differs (`cfrec.config.setting_changes`: a key absent on one side
    counts as null, so an option added to cfrec since does not orphan a run); β caps within `beta_tolerance` agree."""
    def close_caps(key: str, a: Any, b: Any) -> bool:
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
        return key.endswith("beta.cap") and numbers and abs(a - b) <= beta_tolerance
    return setting_changes(stored, wanted, agree=close_caps)


def duration(seconds: float) -> str:
    """A time span as a person reads it: 4.2 s, 40 s, 25 min, 3.5 h."""
    if seconds < 90:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


_EPOCH = re.compile(r"epoch (\d+)/(\d+)")


def _progress(folder: Path) -> str:
    """`epoch N/E` from the end of a run's train.log ("" before its first epoch)."""
    try:
        with (folder / "train.log").open("rb") as f:
            f.seek(max(f.seek(0, 2) - 16384, 0))
            tail = f.read().decode(errors="replace")
    except OSError:
        return ""
    found = _EPOCH.findall(tail)
    return f"epoch {found[-1][0]}/{found[-1][1]}" if found else "preparing"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def inspect(directory: Path, run: PlannedRun, wanted: dict[str, Any] | None, counts: dict[str, Any],
            beta_tolerance: float, dead: frozenset[str] = frozenset(), now: float | None = None,
            split: str | None = None, queued: frozenset[str] = frozenset()) -> RunState:
    """Where `run` stands in its folder under `directory`; `wanted` is its identity (None: not known yet, its β is
    still to be chosen), `counts` and `split` the study's split (its counts and fingerprint key: a run's
    `split_fingerprint`, where it wrote one, must match), `dead` the folders a previous study command ran
    in-process (not running whatever their files' times say), `queued` those a killed study command handed to a
    cluster launcher (running while not started: the job may still wait in the queue)."""
    folder = directory / run.path
    metrics = read_json(folder / "metrics.json")
    status = (metrics or {}).get("status")
    if status == "ok":
        if wanted is None:
            return RunState(run, DONE, "finished; checked once the study's β is chosen", metrics.get("train_seconds"))
        ran_on = metrics.get("split_fingerprint")
        if metrics.get("data") != counts or (split and ran_on and ran_on != split):
            return RunState(run, CONFLICT, "it ran on another split (its counts or split_fingerprint differ from "
                                           "study.json's)")
        diffs = changes(identity(metrics.get("config") or {}, list(wanted)), wanted, beta_tolerance)
        if diffs:
            return RunState(run, CONFLICT, f"another configuration ({'; '.join(diffs[:4])})")
        epochs, best = metrics.get("epochs"), metrics.get("best_epoch")
        told = f"{epochs} epochs (best {best + 1}), " if isinstance(epochs, int) and isinstance(best, int) else ""
        return RunState(run, DONE, f"{told}{duration(metrics.get('train_seconds') or 0)}", metrics.get("train_seconds"))
    written = max(_mtime(folder / "train.log"), _mtime(folder / "checkpoints" / "last.ckpt"),
                  _mtime(folder / "csv" / "metrics.csv"))
    now = time.time() if now is None else now
    if written > _mtime(folder / "metrics.json") and now - written < ACTIVE_S and run.path not in dead:
        return RunState(run, RUNNING, _progress(folder), started=_mtime(folder / ".hydra" / "config.yaml") or written)
    if metrics is None and not written and run.path in queued:
        return RunState(run, RUNNING, QUEUED)
    if status == "failed":
        return RunState(run, FAILED, str(metrics.get("error") or "no error recorded").splitlines()[0])
    resumes = "resumes from checkpoints/last.ckpt" if (folder / "checkpoints" / "last.ckpt").exists() else ""
    return RunState(run, TODO, f"interrupted; {resumes}" if status == "interrupted" and resumes else resumes)
