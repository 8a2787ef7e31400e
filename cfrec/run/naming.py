"""Short, flat names for a sweep's job folders and W&B runs, made of the overrides that tell a job apart.

Hydra's default job folder, `<num>_${hydra.job.override_dirname}`, holds every override verbatim: a data path
puts its slashes in the name (the job then lands in a nested tree), a tab or a long list can break the file-name
limit. cfrec's job folder (`${job_dir:...}` in conf/hydra/default.yaml) is the job number plus the swept keys
whose values are short and plain, e.g. `3_row=multinomial,seed=2`; a path-valued, long or blank value is left out
(the job number keeps the folder unique; the run's `.hydra/` and metrics.json hold every value).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

MAX_VALUE = 32  # longest value kept in a folder or run name
MAX_TAG = 120  # longest `key=value,...` tag of a job folder (file names may hold 255 bytes)
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+@-]")  # anything else in a plain value becomes `_`


def parse(overrides: Iterable[Any]) -> list[Any]:
    """Hydra's parse of `key=value` overrides."""
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
    keys = [o.key_or_group for o in parse(args) if o.is_sweep_override()]
    return list(dict.fromkeys(keys))


def short_value(value: Any) -> str | None:
    """`value` as it reads in a name, or None when it does not belong in one: a path (holds `/` or `\\`), blank
    characters (a tab separator), a mapping, or longer than MAX_VALUE. A list reads `a+b`; other characters
    that are not plain in a file name become `_`."""
    if isinstance(value, bool) or value is None:
        text = {True: "true", False: "false", None: "null"}[value]  # as typed on the command line
    elif isinstance(value, (list, tuple)):
        parts = [short_value(v) for v in value]
        if any(p is None for p in parts):
            return None
        text = "+".join(parts)  # type: ignore[arg-type]
    elif isinstance(value, (str, int, float)):
        text = str(value)
    else:
        return None
    if not text or re.search(r"[/\\\s]", text) or len(text) > MAX_VALUE:
        return None
    return _UNSAFE.sub("_", text)


def override_values(overrides: Iterable[Any], keys: Iterable[str] | None = None,
                    exclude: Iterable[str] = ()) -> dict[str, str]:
    """`key: short value` of the plain `key=value` overrides (no deletions, no `hydra.*`) whose key is in `keys`
    (None: every key) and not in `exclude`; overrides whose value does not belong in a name are left out."""
    wanted, skipped = None if keys is None else set(keys), set(exclude)
    out: dict[str, str] = {}
    for override in parse(overrides or []):
        key = override.key_or_group
        if override.is_delete() or key.startswith(("hydra.", "hydra/")) or key in skipped:
            continue
        if wanted is not None and key not in wanted:
            continue
        if (text := short_value(override.value())) is not None:
            out[key.replace("/", ".")] = text
    return out


def job_tag(values: Mapping[str, str], limit: int = MAX_TAG) -> str:
    """`k1=v1,k2=v2` sorted by key (as Hydra's override_dirname), cut after the last pair that fits `limit`."""
    tag = ""
    for key in sorted(values):
        pair = f"{key}={values[key]}"
        if len(tag) + len(pair) + 1 > limit:
            break
        tag = f"{tag},{pair}" if tag else pair
    return tag


def job_dir(num: Any, overrides: Iterable[Any] | None, sweep_dir: str | None = None,
            sweeper_params: Mapping[str, Any] | None = None, exclude: Iterable[str] | None = None) -> str:
    """A job's folder name in a sweep: `<num>_<swept keys' short values>`, or `<num>` when none is short;
    never holds a `/` and stays far below file-name limits (the `${job_dir:...}` resolver)."""
    keys = swept_keys(sweep_dir, sweeper_params)
    tag = job_tag(override_values(overrides or [], keys, exclude or ()))
    return f"{num}_{tag}" if tag else str(num)
