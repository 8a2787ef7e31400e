"""`prepare_split` (raw file → cached Liang split; `cache_entry` says where) and the LightningDataModule serving its
batches."""

from __future__ import annotations

import inspect
import logging
import numbers
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from cfrec.data.batches import OrderedBatches, PairBatches, RowBatches, ShuffledBatches
from cfrec.data.cache import cache_key, cached_split, source_fingerprint
from cfrec.data.fingerprint import source_sha256
from cfrec.data.protocol import liang_split
from cfrec.data.split import Split
from cfrec.data.synthetic import synthetic_interactions
from cfrec.errors import ConfigError, MissingDataError

log = logging.getLogger(__name__)


def _as_paths(raw_path: str | Path | Sequence[str | Path] | None) -> list[Path]:
    """`dataset.raw_path` as paths; a relative one names a file under the current directory, else (when that
    has none) under `$CFREC_DATA_DIR`, where the presets' raw files live (README: Datasets)."""
    if raw_path is None:
        return []
    if isinstance(raw_path, (str, Path)):
        raw_path = [raw_path]
    data_dir = os.environ.get("CFREC_DATA_DIR")
    paths = []
    for given in (Path(p).expanduser() for p in raw_path):
        under = Path(data_dir).expanduser() / given if data_dir and not given.is_absolute() else None
        paths.append(under if under is not None and not given.exists() and under.exists() else given)
    return paths


def _not_found(error: MissingDataError, paths: list[Path]) -> MissingDataError:
    """`error` saying where a relative `dataset.raw_path` was looked for."""
    if not any(not p.is_absolute() and not p.exists() for p in paths):
        return error
    data_dir = os.environ.get("CFREC_DATA_DIR")
    under = f"under CFREC_DATA_DIR={data_dir}" if data_dir else "under CFREC_DATA_DIR (not set)"
    return MissingDataError(f"{error} (a relative path is looked for in the current directory {Path.cwd()}, "
                            f"then {under})")


@dataclass(frozen=True)
class CacheEntry:
    """Where a split is cached, what its manifest records, and how to build it."""

    directory: Path
    manifest: dict[str, Any]
    build: Callable[[], Split]


def cache_entry(
    name: str,
    format: str,
    raw_path: str | Path | Sequence[str | Path] | None = None,
    threshold: float | None = None,
    min_user_items: int = 5,
    min_item_users: int = 0,
    heldout_users: int = 100,
    seed: int = 98765,
    test_prop: float = 0.2,
    reader: dict[str, Any] | None = None,
    synthetic: dict[str, Any] | None = None,
    cache_dir: str | Path = "~/.cache/cfrec",
) -> CacheEntry:
    """The cache entry of the split these dataset options describe (the raw files found, or downloaded)."""
    reader = {k: v for k, v in (reader or {}).items() if v is not None}  # null = the reader's default
    protocol = dict(threshold=threshold, min_user_items=min_user_items, min_item_users=min_item_users,
                    heldout_users=heldout_users, seed=seed, test_prop=test_prop)
    if format == "synthetic":
        sources: list[Path] = []
        read = lambda: synthetic_interactions(**(synthetic or {}))  # noqa: E731
    else:
        from cfrec.data.download import ensure_raw
        from cfrec.data.readers import read_interactions

        given = _as_paths(raw_path)
        try:
            sources = ensure_raw(name, given, Path(cache_dir).expanduser() / "raw")
        except MissingDataError as error:
            raise _not_found(error, given) from None
        read = lambda: read_interactions(format, sources, **(reader or {}))  # noqa: E731
    params = {"format": format, "reader": reader or {}, "synthetic": synthetic or {}, **protocol}
    stats = source_fingerprint(sources)
    directory = Path(cache_dir).expanduser() / f"{name}-{cache_key(params, stats)}"
    manifest = {"name": name, "params": params, "sources": stats}

    def build() -> Split:
        start = time.perf_counter()
        log.debug("preparing %s from %s", name, [str(p) for p in sources] or "the synthetic generator")
        split = liang_split(read(), **protocol)
        for entry, path in zip(manifest["sources"], sources):  # read anyway: the manifest records the contents
            entry["sha256"] = source_sha256(path)
        train = split.counts()["train"]
        log.info("prepared the %s split from %s: %d training users, %d items (%.1f s; cached)", name,
                 ", ".join(str(p) for p in sources) or "the synthetic generator", train["users"], train["items"],
                 time.perf_counter() - start)
        return split

    return CacheEntry(directory, manifest, build)


def prepare_split(**dataset: Any) -> Split:
    """The processed split for these dataset options (`cache_entry`'s): from the verified cache, or read, split
    and cached."""
    entry = cache_entry(**dataset)
    return cached_split(entry.directory, entry.build, entry.manifest)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_options(dataset: Mapping[str, Any], batch_size: Any = 500, eval_batch_size: Any = 2000) -> None:
    """Raise ConfigError naming the first `dataset.<option>` that is unknown or impossible, before any data is read."""
    from cfrec.data.readers import KNOWN_FORMATS, check_reader_options

    known = set(inspect.signature(cache_entry).parameters)
    for key in dataset:
        if key not in known:
            raise ConfigError(f"dataset.{key} is not a dataset option (options: {', '.join(sorted(known))})")
    formats = ("synthetic", *KNOWN_FORMATS)
    if dataset.get("format") not in formats:
        raise ConfigError(f"dataset.format={dataset.get('format')} is not a known format "
                          f"(one of: {', '.join(formats)})")
    for key, value, least in (("heldout_users", dataset.get("heldout_users", 100), 1),
                              ("min_user_items", dataset.get("min_user_items", 5), 0),
                              ("min_item_users", dataset.get("min_item_users", 0), 0),
                              ("batch_size", batch_size, 1), ("eval_batch_size", eval_batch_size, 1)):
        if not _is_int(value) or value < least:
            raise ConfigError(f"dataset.{key}={value} must be an integer >= {least}")
    test_prop = dataset.get("test_prop", 0.2)
    if not isinstance(test_prop, numbers.Real) or not 0 < test_prop < 1:
        raise ConfigError(f"dataset.test_prop={test_prop} must be a number between 0 and 1 (exclusive)")
    threshold = dataset.get("threshold")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, numbers.Real)):
        raise ConfigError(f"dataset.threshold={threshold} must be a number or null")
    reader = dataset.get("reader") or {}
    if not isinstance(reader, Mapping):
        raise ConfigError(f"dataset.reader={reader} must be a mapping of reader options "
                          "(sep, header, columns, comment)")
    check_reader_options(reader)
    given = sorted(k for k, v in reader.items() if v is not None)
    if given and dataset.get("format") != "triplets":
        raise ConfigError(f"dataset.reader.{given[0]} is set, but only dataset.format=triplets takes reader options")


class CFDataModule(pl.LightningDataModule):
    """Training rows in shuffled batches of users; validation/test as (fold-in, held-out) pairs.

    Rows are sliced from CSR per batch (a BatchSampler hands the Dataset whole index lists), so no
    per-user Python loop runs and nothing is densified before the model asks for it. The options are
    checked when the module is built (ConfigError naming the option), before any data is read.
    `budget` is the training budget the dataset preset suggests (`epochs`, `anneal_fraction`), read by
    conf/trainer and conf/beta through interpolation; the data module ignores it.
    """

    def __init__(self, batch_size: int = 500, eval_batch_size: int = 2000, shuffle_seed: int = 98765,
                 budget: Mapping[str, Any] | None = None, **dataset: Any):
        super().__init__()
        check_options(dataset, batch_size, eval_batch_size)
        self.dataset = dataset
        self.name = dataset.get("name", "dataset")
        self.batch_size, self.eval_batch_size, self.shuffle_seed = batch_size, eval_batch_size, shuffle_seed
        self.split: Split | None = None
        self.cache_path: Path | None = None  # the split's cache entry, once set up
        self._resume_epoch = 0  # the training epoch a restored checkpoint continues with

    def _train_epoch(self) -> int:
        """The epoch whose batches the training loader serves next: Lightning's count of processed epochs."""
        trainer = self.trainer
        return trainer.fit_loop.epoch_progress.current.processed if trainer is not None else 0

    def state_dict(self) -> dict[str, Any]:
        return {"train_epoch": self._train_epoch()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._resume_epoch = int(state_dict.get("train_epoch", 0))

    def teardown(self, stage: str | None = None) -> None:
        if stage == "fit":
            self._resume_epoch = 0

    def prepare_data(self) -> None:
        prepare_split(**self.dataset)

    def setup(self, stage: str | None = None) -> None:
        if self.split is None:
            entry = cache_entry(**self.dataset)
            self.split = cached_split(entry.directory, entry.build, entry.manifest)
            self.cache_path = entry.directory  # its manifest.json: cfrec.data.fingerprint.split_fingerprint

    @property
    def n_items(self) -> int:
        self.setup()
        return self.split.n_items

    def _rank_world(self) -> tuple[int, int]:
        """(global rank, world size) under DDP (our samplers shard batches themselves), else (0, 1)."""
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _generator(self) -> torch.Generator:
        """A private generator for a DataLoader: creating its iterator draws a base seed from it, which
        would otherwise come from torch's global generator and shift dropout / sampling draws."""
        return torch.Generator().manual_seed(self.shuffle_seed)

    def train_dataloader(self) -> DataLoader:
        rows = RowBatches(self.split.train)
        sampler = ShuffledBatches(len(rows), self.batch_size, self.shuffle_seed, *self._rank_world())
        # Lightning calls `set_epoch` before each epoch, but when a run resumes it may build the loader
        # (and prefetch its first batch) before that call and before restoring its loops (a model asking
        # for `trainer.estimated_stepping_batches` in `on_fit_start` or `configure_optimizers` does), and
        # it does not build a new iterator for the resumed epoch. The datamodule's own state, restored
        # first, says which epoch that is.
        sampler.set_epoch(max(self._resume_epoch, self._train_epoch()))
        return DataLoader(rows, sampler=sampler, batch_size=None, generator=self._generator())

    def _pairs(self, fold_in: Any, heldout: Any) -> DataLoader:
        pairs = PairBatches(fold_in, heldout)
        return DataLoader(pairs, sampler=OrderedBatches(len(pairs), self.eval_batch_size, *self._rank_world()),
                          batch_size=None,
                          generator=self._generator())

    def val_dataloader(self) -> DataLoader:
        return self._pairs(self.split.val_tr, self.split.val_te)

    def test_dataloader(self) -> DataLoader:
        return self._pairs(self.split.test_tr, self.split.test_te)
