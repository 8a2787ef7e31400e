"""Stage 1: the split a study runs on, prepared (and cached) once, and its fingerprint.

The fingerprint is what two studies must share to share a β or a run: the dataset's name, its protocol settings
(reader, threshold, minimum counts, held-out users, split seed, test share), the sha256 of every source file and
the split's counts (cfrec/data/cache.py's manifest holds the same settings and counts), and `key`, the 16 hex digits
train.py writes to each run's metrics.json as `split_fingerprint` (cfrec/data/fingerprint.py), by which a run folder is
checked to hold a run of this split. A study.dir holds one split: a command whose split has another fingerprint is
refused.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cfrec.data.fingerprint import source_sha256, split_fingerprint

#: dataset options that do not make the split: where files are, the loaders' batch sizes, the preset's budget
NOT_PROTOCOL = ("_target_", "cache_dir", "raw_path", "batch_size", "eval_batch_size", "shuffle_seed", "budget")


def prepare(dataset: DictConfig) -> tuple[dict[str, Any], int]:
    """(fingerprint, training steps per epoch) of the split `dataset` (the composed `dataset` node) selects,
    preparing and caching the split first."""
    from cfrec.data.download import ensure_raw

    dm = instantiate(dataset)
    dm.setup()
    options = OmegaConf.to_container(dataset, resolve=True)
    protocol = {k: v for k, v in options.items() if k not in NOT_PROTOCOL}
    protocol["reader"] = {k: v for k, v in (protocol.get("reader") or {}).items() if v is not None}
    sources: list[Path] = []
    if options["format"] != "synthetic":  # the files prepare_split read (a download where raw_path is missing)
        raw = options.get("raw_path")
        given = None if raw is None else [Path(p).expanduser() for p in ([raw] if isinstance(raw, str) else raw)]
        sources = ensure_raw(options["name"], given, Path(options["cache_dir"]).expanduser() / "raw")
    counts = dm.split.counts()
    fingerprint = {"dataset": options["name"], "key": split_fingerprint(dm), "protocol": protocol, "counts": counts,
                   "sources": [{"path": str(p.resolve()), "sha256": source_sha256(p)} for p in sources]}
    return fingerprint, math.ceil(counts["train"]["users"] / dm.batch_size)


def fingerprint_changes(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints (source paths may: the same files elsewhere are the same split)."""
    changes = [] if recorded.get("dataset") == current.get("dataset") else [
        f"dataset {recorded.get('dataset')!r} -> {current.get('dataset')!r}"]
    old, new = recorded.get("protocol") or {}, current.get("protocol") or {}
    changes += [f"dataset.{key}: {old.get(key)!r} -> {new.get(key)!r}" for key in sorted(old.keys() | new.keys())
                if old.get(key) != new.get(key)]
    digests = [[s["sha256"] for s in fp.get("sources", [])] for fp in (recorded, current)]
    if digests[0] != digests[1]:
        changes.append("the source files' sha256 differ")
    if recorded.get("counts") != current.get("counts"):
        changes.append("the split's counts differ")
    if not changes and recorded.get("key") != current.get("key"):  # e.g. the same files read in another order
        changes.append(f"split fingerprint {recorded.get('key')} -> {current.get('key')}")
    return changes
