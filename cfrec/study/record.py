"""study.json, a study's record (written atomically), and the mark of the study command using a study.dir.

study.json holds the split's fingerprint, the settings, the β (its value, where it came from, the search's curve) and
the stages done. `.study.lock` marks the command working on the folder: its pid and host, the launcher and the
runs it launched; it is kept when the command ends (with `ended`), so that the next command knows whether runs
left half-written were that command's in-process jobs (dead with it) or may still be running elsewhere.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from cfrec.errors import ConfigError
from cfrec.io import atomic_write_json

STUDY_JSON = "study.json"
LOCK = ".study.lock"


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from `path`, or None when it is missing or unreadable (a run still writing it)."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def read_record(directory: Path) -> dict[str, Any] | None:
    """The study's record, None for a folder no study has used; ConfigError when study.json is not one."""
    path = directory / STUDY_JSON
    if not path.exists():
        return None
    record = read_json(path)
    if record is None or "fingerprint" not in record:
        raise ConfigError(f"{path} is not a study's record (unreadable, or written by something else)")
    return record


def write_record(directory: Path, record: dict[str, Any]) -> None:
    """study.json written whole (cfrec.io)."""
    atomic_write_json(directory / STUDY_JSON, record)


def stamp() -> str:
    """The time now, as study.json writes it (local time, to the second)."""
    return time.strftime("%Y-%m-%d %H:%M:%S")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def holder(directory: Path) -> dict[str, Any] | None:
    """The mark of a study command still working on `directory` (on this host: its process is alive; on another
    host: it has not marked its end), else None."""
    mark = read_json(directory / LOCK)
    if mark is None or mark.get("ended"):
        return None
    if mark.get("host") == socket.gethostname() and not _alive(int(mark.get("pid", 0))):
        return None
    return mark


def acquire(directory: Path, launcher: str) -> dict[str, Any]:
    """Mark `directory` as this command's; returns the previous command's mark ({} for none). ConfigError when another
    study command is working on it."""
    if (other := holder(directory)) is not None:
        where = f"pid {other.get('pid')} on {other.get('host')}"
        raise ConfigError(f"another study command ({where}, since {other.get('started')}) is working on {directory}; "
                          f"wait for it, or if it has stopped, delete {directory / LOCK}")
    previous = read_json(directory / LOCK) or {}
    atomic_write_json(directory / LOCK, {"pid": os.getpid(), "host": socket.gethostname(), "started": stamp(),
                                         "launcher": launcher, "runs": []})
    return previous


def in_process_runs(mark: dict[str, Any]) -> frozenset[str]:
    """The runs a study command that has stopped was running in its own process (the basic launcher): they stopped
    with it, however recently their files were written. Other launchers' jobs may outlive the command."""
    return frozenset(mark.get("runs", [])) if mark.get("launcher") == "basic" else frozenset()


def queued_runs(mark: dict[str, Any]) -> frozenset[str]:
    """The runs a study command killed before it ended (no `ended` in its mark) handed to a launcher whose jobs
    outlive it (submitit: SLURM's queue): a job not started yet may still start, so they are not relaunched at once."""
    if mark.get("ended") or mark.get("launcher") in ("basic", "joblib"):
        return frozenset()
    return frozenset(mark.get("runs", []))


def mark_launched(directory: Path, runs: list[str]) -> None:
    """Add `runs` (folders relative to the study) to this command's mark before they are launched."""
    mark = read_json(directory / LOCK) or {}
    atomic_write_json(directory / LOCK, {**mark, "runs": [*mark.get("runs", []), *runs]})


def release(directory: Path) -> None:
    """Mark this command's end (the mark stays, for the next command)."""
    mark = read_json(directory / LOCK)
    if mark is not None and mark.get("pid") == os.getpid():
        atomic_write_json(directory / LOCK, {**mark, "ended": stamp()})
