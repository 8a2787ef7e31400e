"""Processed splits on disk: one `.npz` plus a JSON manifest, written atomically and verified on read.

The cache key hashes the preprocessing parameters and each source file's path, size and mtime, so
any change to either gives a new entry. The manifest is written last (it is the commit marker) and
records the sha256 of the `.npz`; a missing, truncated or altered entry is detected and rebuilt.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from cfrec.data.split import PARTS, Split
from cfrec.io import atomic_write, atomic_write_json, sha256_file, sha256_json

log = logging.getLogger(__name__)

#: raw-id arrays stored beside the matrices (as strings, the readers' ids being strings or integers)
ID_ARRAYS: tuple[str, ...] = ("item_ids", "train_user_ids", "val_user_ids", "test_user_ids")


def source_fingerprint(paths: list[Path]) -> list[dict[str, Any]]:
    """Path, size and mtime of each source file: cheap staleness check for large raw files."""
    out = []
    for p in paths:
        st = p.stat()
        out.append({"path": str(p.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns})
    return out


def cache_key(params: dict[str, Any], sources: list[dict[str, Any]]) -> str:
    """The cache entry's name: 16 hex digits of the preprocessing parameters and the sources' fingerprints."""
    return sha256_json({"params": params, "sources": sources})[:16]


def save_split(split: Split, directory: Path, manifest: dict[str, Any]) -> None:
    """Write `split.npz`, then `manifest.json` holding its checksum (both atomically)."""
    arrays: dict[str, np.ndarray] = {name: np.asarray(getattr(split, name)).astype(str) for name in ID_ARRAYS}
    for part in PARTS:
        m = getattr(split, part)
        arrays.update({f"{part}_indptr": m.indptr, f"{part}_indices": m.indices, f"{part}_shape": np.array(m.shape)})
    npz = atomic_write(directory / "split.npz", lambda f: np.savez(f, **arrays), suffix=".npz")
    atomic_write_json(directory / "manifest.json",
                      {**manifest, "split_sha256": sha256_file(npz), "counts": split.counts()})


def load_split(directory: Path) -> Split:
    """Read and verify a cached split; raises `CacheError` if anything is missing or altered."""
    manifest_path, npz = directory / "manifest.json", directory / "split.npz"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CacheError(f"{manifest_path}: unreadable manifest ({e})") from e
    if not npz.exists() or sha256_file(npz) != manifest.get("split_sha256"):
        raise CacheError(f"{npz}: checksum does not match {manifest_path.name}")
    with np.load(npz) as z:
        missing = [name for name in ID_ARRAYS if name not in z.files]
        if missing:
            raise CacheError(f"{npz}: written by an older cfrec (no {', '.join(missing)})")
        mats = {}
        for part in PARTS:
            indptr, indices = z[f"{part}_indptr"], z[f"{part}_indices"]
            data = np.ones(len(indices), dtype=np.float32)
            mats[part] = sp.csr_matrix((data, indices, indptr), shape=tuple(z[f"{part}_shape"]))
        split = Split(**mats, **{name: z[name] for name in ID_ARRAYS})
    if split.counts() != manifest.get("counts"):
        raise CacheError(f"{npz}: matrix sizes differ from {manifest_path.name}")
    return split


class CacheError(RuntimeError):
    """A cache entry is missing, incomplete or does not match its manifest."""


def cached_split(directory: Path, build: Callable[[], Split], manifest: dict[str, Any]) -> Split:
    """Load the verified entry in `directory`, or build, save and return it (rebuilding a bad entry)."""
    if (directory / "manifest.json").exists():
        try:
            return load_split(directory)
        except CacheError as e:
            log.warning("rebuilding the processed split: %s", e)
            (directory / "manifest.json").unlink(missing_ok=True)  # uncommit the bad entry first
    split = build()
    save_split(split, directory, manifest)
    return split
