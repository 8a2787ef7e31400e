"""One W&B run per training run, across the attempts of a run that was killed and resumed.

W&B cannot resume an offline run: every attempt writes its own `wandb/offline-run-<time>-<id>/`, and `wandb sync`
of several folders of one id keeps only one of them. So a run keeps one W&B id for all its attempts (stored in
`<run dir>/wandb/cfrec-run-id`), a resumed attempt first logs again what the earlier attempts logged up to the
epoch it resumes from (read from their `run-<id>.wandb` files), and once the attempt ends the earlier attempts'
folders are moved to `wandb/superseded/`, out of reach of `wandb sync <run dir>/wandb/offline-run-*`: what is
left is one offline run holding the whole history.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import shutil
import string
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cfrec.io import atomic_write_bytes

log = logging.getLogger(__name__)

ID_FILE = "cfrec-run-id"
SUPERSEDED = "superseded"
_BLOCK = 32768  # the .wandb file is a LevelDB-style log: 32 KiB blocks of chunks with a 7-byte header
_FULL, _LAST = 1, 4  # chunk kinds that end a record


def run_id(save_dir: str | Path) -> str:
    """The W&B run id of the run in `save_dir`: the one stored there by an earlier attempt, else a new one."""
    path = Path(save_dir) / "wandb" / ID_FILE
    if path.is_file() and (stored := path.read_text().strip()):
        return stored
    new = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))  # as W&B's own ids
    atomic_write_bytes(path, f"{new}\n".encode())
    return new


def _records(path: Path) -> Iterator[Any]:
    """The protobuf records of an offline run file, up to the first incomplete one (a killed attempt's tail)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, chunks = path.read_bytes(), 7, b""  # 7-byte header: ":W&B", magic, version
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B run file")
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if length == 0 and kind == 0:  # padding to the end of the block
            pos += left
            continue
        if pos + 7 + length > len(data):
            return
        chunks, pos = chunks + data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (_FULL, _LAST):
            record = pb.Record()
            record.ParseFromString(chunks)
            yield record
            chunks = b""


def _value(item: Any) -> Any:
    if item.value_json:
        return json.loads(item.value_json)
    kind = item.WhichOneof("value")
    return None if kind in (None, "none") else json.loads(item.json) if kind == "json" else getattr(item, kind)


def history(folder: Path) -> list[dict[str, Any]]:
    """The rows an offline run logged (W&B's own `_step`, `_runtime`, `_timestamp` left out), in order."""
    rows = []
    for path in folder.glob("run-*.wandb"):
        for record in _records(path):
            if record.WhichOneof("record_type") == "history":
                row = {item.key or "/".join(item.nested_key): _value(item) for item in record.history.item}
                rows.append({k: v for k, v in row.items() if not k.startswith("_")})
    return rows


def earlier_attempts(wandb_dir: Path, run: str, current: Path | None) -> list[Path]:
    """This run id's offline folders other than `current`, oldest first (their names start with the time; W&B adds
    `-1`, `-2`, ... to a folder whose attempt started in the same second as an earlier one)."""
    name = re.compile(rf"offline-run-\d{{8}}_\d{{6}}-{re.escape(run)}(-\d+)?")
    return sorted(p for p in wandb_dir.glob("offline-run-*") if name.fullmatch(p.name) and p.is_dir() and p != current)


def replay(experiment: Any, wandb_dir: Path, up_to_epoch: int) -> int:
    """Log into `experiment` (the resumed attempt's W&B run) the rows that earlier attempts logged for epochs up
    to `up_to_epoch` (the checkpoint resumed from), each once: a row redone by a later attempt is taken from the
    latest attempt holding it. Returns the number of rows logged."""
    current = Path(experiment.dir).parent
    seen: set[tuple[Any, ...]] = set()
    kept: list[dict[str, Any]] = []
    for folder in reversed(earlier_attempts(wandb_dir, experiment.id, current)):  # the latest attempt first
        try:
            rows = history(folder)
        except (OSError, ValueError) as error:  # a damaged folder: what it held is not replayed
            log.warning("W&B history of %s not replayed (%s)", folder, error)
            continue
        for row in rows:
            epoch = row.get("epoch")
            key = (row.get("trainer/global_step"), epoch, tuple(sorted(row)))
            if isinstance(epoch, (int, float)) and epoch <= up_to_epoch and key not in seen:
                seen.add(key)
                kept.append(row)
    kept.sort(key=lambda row: row.get("trainer/global_step") or 0)  # stable: an attempt's rows keep their order
    for row in kept:
        experiment.log(row)
    return len(kept)


def supersede(wandb_dir: Path, run: str, current: Path) -> list[Path]:
    """Move this run id's offline folders other than `current` into `wandb/superseded/`; returns where to."""
    moved = []
    for folder in earlier_attempts(wandb_dir, run, current):
        target = wandb_dir / SUPERSEDED / folder.name
        target.parent.mkdir(exist_ok=True)
        shutil.move(str(folder), str(target))
        moved.append(target)
    return moved
