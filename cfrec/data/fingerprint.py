"""What names a processed split: two runs are on the same split, and their metrics may be pooled, only when
they share it.

A split is fixed by the dataset's name, its reader (`format`, `reader`, `synthetic`), Liang's protocol settings
(threshold, min_user_items, min_item_users, heldout_users, seed, test_prop), the contents of its source files and
the counts that result; the cache manifest (cfrec/data/cache.py) records them all. `split_fingerprint` names the
split a data module serves in 16 hex digits (written to metrics.json as `split_fingerprint`); the report
(cfrec/report/splits.py) reads the same parts from a run's `config.dataset` and `data`, so that runs written
before the field existed group by their protocol and counts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cfrec.io import sha256_file, sha256_json

#: Liang's protocol settings and their defaults (those of `cfrec.data.datamodule.cache_entry`)
PROTOCOL_DEFAULTS: dict[str, Any] = {"threshold": None, "min_user_items": 5, "min_item_users": 0,
                                     "heldout_users": 100, "seed": 98765, "test_prop": 0.2}


def protocol(options: Mapping[str, Any]) -> dict[str, Any]:
    """The dataset options that make the split, defaults filled in: reader, protocol settings (null reader
    options dropped, numbers normalised so that `3.5` from YAML and from JSON compare equal)."""
    out: dict[str, Any] = {"format": options.get("format")}
    out["reader"] = {k: v for k, v in dict(options.get("reader") or {}).items() if v is not None}
    out["synthetic"] = dict(options.get("synthetic") or {})
    for key, default in PROTOCOL_DEFAULTS.items():
        value = options.get(key, default)
        if key in ("threshold", "test_prop") and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value)
        out[key] = value
    return json.loads(json.dumps(out, sort_keys=True, default=str))  # plain containers (DictConfig, ListConfig)


def split_key(name: str, options: Mapping[str, Any], counts: Mapping[str, Any] | None,
              sources: Sequence[str] | None) -> str:
    """16 hex digits naming a split: its dataset name, `protocol(options)`, its counts and the sha256 of its
    source files in order (None where not known)."""
    return sha256_json({"name": name, "protocol": protocol(options), "counts": counts,
                        "sources": list(sources) if sources is not None else None})[:16]


def source_sha256(path: Path) -> str:
    """sha256 of a source file, or of a source folder's files (their sorted relative paths and sha256)."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return sha256_json([[str(p.relative_to(path)), sha256_file(p)] for p in files])
    return sha256_file(path)


def split_fingerprint(dm: Any) -> str:
    """The fingerprint (`split_key`) of the split a `CFDataModule` serves, set up if it is not yet: the
    sources' sha256 come from the cache manifest, which records them when it builds the split (computed here
    for an entry cached before it did)."""
    dm.setup()
    sources = None  # a split handed to the data module rather than read through the cache: contents unknown
    if dm.cache_path is not None:
        manifest = json.loads((dm.cache_path / "manifest.json").read_text())
        sources = [s.get("sha256") or source_sha256(Path(s["path"])) for s in manifest.get("sources", [])]
    return split_key(dm.name, dm.dataset, dm.split.counts(), sources)
