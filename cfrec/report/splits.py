"""Which split each run was evaluated on, so that runs of different splits are never pooled.

Two runs share a split when they share the dataset name, the protocol (`cfrec.data.fingerprint.protocol` of
their `config.dataset`: reader, threshold, minimum counts, held-out users, split seed, test share), the split's
counts (metrics.json's `data`) and, where training recorded it, `split_fingerprint` (which also covers the
source files' contents). A run that does not record a part (a failed run has no counts; runs written before
`split_fingerprint` existed have none) joins the one split its recorded parts match.

Where one dataset name holds several splits, each run's dataset becomes `<name> (<what differs>)`, e.g.
`custom (190 held out)` and `custom (100 held out)`, or `ml-100k (threshold 3.5)` and `ml-100k (all ratings)`;
every part of the report keys on that name, so the splits get their own rows, tables and seeds. A name with
one split keeps its name.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cfrec.config import flatten
from cfrec.data.fingerprint import protocol, split_key

if TYPE_CHECKING:
    from cfrec.report.collect import Run

Key = tuple[str | None, ...]  # (name, protocol, counts, fingerprint) as JSON text; None = not recorded


def _parts(run: Run) -> Key:
    """The run's split as recorded: its dataset name, protocol, counts and fingerprint (JSON text or None)."""
    dataset = run.config.get("dataset") if isinstance(run.config.get("dataset"), dict) else {}
    counts = run.metrics.get("data")
    return (run.dataset, json.dumps(protocol(dataset), sort_keys=True),
            json.dumps(counts, sort_keys=True) if isinstance(counts, dict) else None,
            run.metrics.get("split_fingerprint"))


def resolve(keys: Sequence[Key]) -> list[Key]:
    """Each key with a part not recorded (None) filled in where exactly one recorded value fits the parts
    before it; otherwise it stays None (a split of its own)."""
    resolved = list(keys)
    for depth in range(1, len(keys[0]) if keys else 0):
        for i, key in enumerate(resolved):
            if key[depth] is None:
                known = {k[depth] for k in resolved if k[:depth] == key[:depth] and k[depth] is not None}
                if len(known) == 1:
                    resolved[i] = (*key[:depth], known.pop(), *key[depth + 1:])
    return resolved


def _describe(key: str, value: Any) -> str:
    """One protocol setting as a reader of the report says it (`190 held out`, `threshold 3.5`, `seed=1`)."""
    if key == "heldout_users":
        return f"{value} held out"
    if key == "threshold":
        return "all ratings" if value is None else f"threshold {value:g}"
    return f"{key}={'default' if value is None else repr(value) if isinstance(value, str) else value}"


def _counts_text(counts: str | None) -> str:
    if counts is None:
        return "counts not recorded"
    train = json.loads(counts).get("train") or {}
    return f"{train.get('users')} training users, {train.get('items')} items"


def split_labels(splits: Sequence[Key]) -> dict[Key, str]:
    """A readable name for each split of one dataset name: the protocol settings that differ between them,
    then their counts, then their fingerprints, as far as needed to tell them apart."""
    name = str(splits[0][0])
    settings = {s: {k: v for k, v in flatten(json.loads(s[1])).items() if v != {}} for s in splits}
    keys = sorted({k for flat in settings.values() for k in flat})
    differ = [k for k in keys if len({json.dumps(f.get(k)) for f in settings.values()}) > 1]
    parts = {s: [_describe(k, settings[s].get(k)) for k in differ] for s in splits}
    for extra in (lambda s: _counts_text(s[2]), lambda s: f"split {s[3][:8]}" if s[3] else "source not recorded"):
        alike: dict[str, list[Key]] = {}  # the splits whose names so far are the same
        for s in splits:
            alike.setdefault(json.dumps(parts[s]), []).append(s)
        for group in alike.values():
            if len({extra(s) for s in group}) > 1:  # this part tells them apart: each name gets it
                for s in group:
                    parts[s] = [*parts[s], extra(s)]
    labels = {s: f"{name} ({', '.join(parts[s])})" for s in splits}
    for i, s in enumerate(splits):  # still alike (runs that differ in nothing recorded): numbered
        if sum(labels[t] == labels[s] for t in splits) > 1:
            labels[s] = f"{name} (split {i + 1}{', ' if parts[s] else ''}{', '.join(parts[s])})"
    return labels


def name_splits(runs: list[Run]) -> None:
    """Set each run's `split` (its fingerprint) and, where its dataset name holds several splits, its dataset
    to the split's name (`split_labels`)."""
    keys = resolve([_parts(r) for r in runs])
    for run, key in zip(runs, keys):
        counts = json.loads(key[2]) if key[2] else None
        run.split = key[3] or split_key(run.dataset, json.loads(key[1]), counts, None)
    by_name: dict[str, list[Key]] = {}
    for key in dict.fromkeys(keys):
        by_name.setdefault(str(key[0]), []).append(key)
    labels = {k: label for splits in by_name.values() if len(splits) > 1 for k, label in split_labels(splits).items()}
    for run, key in zip(runs, keys):
        run.dataset = labels.get(key, run.dataset)
