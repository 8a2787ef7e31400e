"""Files written whole or not at all, and their digests: the one home of cfrec's atomic writes and hashing.

Every output a run or the cache commits (splits, manifests, checkpoints, metrics, per-user values, exports,
downloads) goes through `atomic_write`: a temporary file in the target's folder, fsynced, then renamed over
the target, so a reader sees the old file or the new one, never a partial one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

#: bytes read at a time when hashing a file
CHUNK = 1 << 20


def _default_mode(fd: int) -> None:
    """Give a mkstemp file (created 0600) the permissions `open()` would have given it (0666 & ~umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)


def atomic_write(path: Path, write: Callable[[IO[bytes]], object], suffix: str = ".tmp") -> Path:
    """Call `write` on a temporary file beside `path`, fsync it, then rename it over `path`; returns `path`.

    If `write` raises (a failed checksum, a full disk, Ctrl-C), `path` is untouched and the temporary file is
    removed; only a process killed outright leaves a `.NAME.*<suffix>` behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            _default_mode(f.fileno())
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: Path, data: bytes | memoryview) -> None:
    """`data` written atomically to `path` (`atomic_write`)."""
    atomic_write(path, lambda f: f.write(data))


def atomic_write_json(path: Path, obj: Any) -> None:
    """`obj` as indented, key-sorted JSON written atomically to `path` (never a truncated file)."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def digests(chunks: Iterable[bytes], algorithms: tuple[str, ...] = ("sha256", "md5")) -> dict[str, str]:
    """Hex digests of a stream of bytes, one per hashlib algorithm, in one pass."""
    hashers = {name: hashlib.new(name) for name in algorithms}
    for chunk in chunks:
        for hasher in hashers.values():
            hasher.update(chunk)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


def file_digests(path: Path, algorithms: tuple[str, ...] = ("sha256", "md5")) -> dict[str, str]:
    """Hex digests of a file, read in chunks (to check a download or a cached archive)."""
    with Path(path).open("rb") as f:
        return digests(iter(lambda: f.read(CHUNK), b""), algorithms)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file (the cache's checksum of its `.npz`)."""
    return file_digests(path, ("sha256",))["sha256"]


def sha256_json(obj: Any) -> str:
    """Hex sha256 of `obj` as key-sorted JSON: a key that names the content, not its order."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
