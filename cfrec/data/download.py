"""Fetching the public raw datasets (checksummed, atomic) and telling the user how to get the rest."""

from __future__ import annotations

import http.client
import logging
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from cfrec.errors import ConfigError, DataError, MissingDataError
from cfrec.io import atomic_write, digests, file_digests

log = logging.getLogger(__name__)

_CHUNK = 2**20
_GROUPLENS = "https://files.grouplens.org/datasets/movielens"

# MD5s are GroupLens' own `<zip>.md5` files (e.g. ml-20m.zip.md5), as quoted verbatim by several
# independent projects; GroupLens publishes no SHA-256. `format` is the reader for `member`.
KNOWN_SOURCES: dict[str, dict] = {
    "ml-20m": {
        "url": f"{_GROUPLENS}/ml-20m.zip",
        "md5": "cd245b17a1ae2cc31bb14903e1204af3",
        "member": "ml-20m/ratings.csv",
        "format": "movielens-csv",
    },
    "ml-1m": {
        "url": f"{_GROUPLENS}/ml-1m.zip",
        "md5": "c4d9eecfca2ab87c1945afe126590906",
        "member": "ml-1m/ratings.dat",
        "format": "movielens-dat",
    },
    "ml-100k": {
        "url": f"{_GROUPLENS}/ml-100k.zip",
        "md5": "0e33842e24a9c977be4e0107933c0723",
        "member": "ml-100k/u.data",
        "format": "movielens-tsv",
    },
    "netflix": {
        "url": None,
        "format": "netflix",
        "obtain": (
            "the Netflix Prize training_set directory of mv_*.txt files (inside training_set.tar in "
            "nf_prize_dataset.tar.gz from https://archive.org/details/nf_prize_dataset.tar; Kaggle's "
            "combined_data_*.txt files work too), then set dataset.raw_path=/path/to/training_set"
        ),
    },
    "msd": {
        "url": None,
        "format": "msd-triplets",
        "obtain": (
            "the Echo Nest Taste Profile subset train_triplets.txt (the 'triplets for 1M users' zip "
            "linked from http://millionsongdataset.com/tasteprofile/), unzip it, "
            "then set dataset.raw_path=/path/to/train_triplets.txt"
        ),
    },
}


class DownloadError(OSError):
    """A URL could not be fetched; the message says how to download it by hand instead."""

    def __init__(self, url: str, reason: object):
        super().__init__(f"could not fetch {url} ({reason}); are you offline? "
                         "Download it by hand and point dataset.raw_path at the file")
        self.url, self.reason = url, reason


class ChecksumError(DataError):
    """A downloaded file does not match its published checksum."""


def fetch(
    url: str,
    dest: Path,
    sha256: str | None = None,
    md5: str | None = None,
    progress: bool = True,
) -> Path:
    """Download `url` to `dest` via a temporary file, verify checksums, then rename atomically."""
    dest = Path(dest)

    def download_and_verify(out) -> None:
        _verify(url, {"sha256": sha256, "md5": md5}, _download(url, out, dest.name, progress))

    return atomic_write(dest, download_and_verify, suffix=".part")


def _download(url: str, out, label: str, progress: bool) -> dict[str, str]:
    """Stream `url` into the open file `out`; return its sha256 and md5 hex digests."""
    received = 0

    def written(response, bar):
        nonlocal received
        while chunk := response.read(_CHUNK):
            out.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
            yield chunk

    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=label, disable=not progress
            ) as bar:
                got = digests(written(response, bar))
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as err:
        raise DownloadError(url, err) from err
    if total is not None and received != total:
        raise DownloadError(url, f"got {received} of {total} bytes")
    return got


def _verify(source: object, expected: dict[str, str | None], got: dict[str, str]) -> None:
    """Raise ChecksumError unless every given checksum matches."""
    for algo, want in expected.items():
        if want and want.lower() != got[algo]:
            raise ChecksumError(
                f"{algo} checksum mismatch for {source}: expected {want.lower()}, got {got[algo]}"
                " (the download was deleted; retry, or download it by hand)"
            )


def extract(zip_path: Path, member: str, dest_dir: Path) -> Path:
    """Extract one member of a zip to `dest_dir/member`, via a temporary file and atomic rename."""
    dest = Path(dest_dir) / member
    if not dest.resolve().is_relative_to(Path(dest_dir).resolve()):
        raise ValueError(f"zip member {member!r} would land outside {dest_dir}")
    try:
        with zipfile.ZipFile(zip_path) as archive, archive.open(member) as src:
            atomic_write(dest, lambda out: shutil.copyfileobj(src, out, _CHUNK), suffix=".part")
    except KeyError:
        raise MissingDataError(f"{zip_path} has no member {member!r}") from None
    except zipfile.BadZipFile as err:
        raise DataError(f"{zip_path} is not a valid zip archive ({err}); delete it and retry") from err
    return dest


def ensure_raw(
    name: str, raw_path: str | Path | Sequence[str | Path] | None, cache_dir: Path
) -> list[Path]:
    """The raw files of dataset `name`: `raw_path` if it exists, else downloaded into `cache_dir`.

    Raises MissingDataError (one line naming dataset.raw_path and what to do) when neither works.
    """
    given = [] if raw_path is None else (
        [Path(raw_path)] if isinstance(raw_path, (str, Path)) else [Path(p) for p in raw_path]
    )
    missing = [p for p in given if not p.exists()]
    if given and not missing:
        return given
    where = f" at {', '.join(map(str, missing))}" if missing else ""
    source = KNOWN_SOURCES.get(name)
    if source is None:
        if not given:
            raise ConfigError(f"dataset.raw_path is not set; point it at the raw file(s) of {name!r}")
        raise MissingDataError(f"dataset.raw_path: {', '.join(map(str, missing))} does not exist")
    if source["url"] is None:
        raise MissingDataError(f"raw data for {name!r} not found{where} (dataset.raw_path). Obtain {source['obtain']}")
    path = _download_source(name, source, Path(cache_dir), where)
    if missing:
        log.warning("raw data for %s not found%s; using the published copy %s instead", name, where, path)
    return [path]


def _download_source(name: str, source: dict, cache_dir: Path, where: str = "") -> Path:
    """Fetch (unless a verified copy is cached) and extract a registered archive's member."""
    member = cache_dir / source["member"]
    if member.exists():
        return member
    archive = cache_dir / source["url"].rsplit("/", 1)[-1]
    if archive.exists():
        try:
            _verify(archive, {"md5": source.get("md5"), "sha256": source.get("sha256")},
                    file_digests(archive))
        except ChecksumError:
            log.warning("cached %s fails its checksum; downloading it again", archive)
            archive.unlink()
    if not archive.exists():
        log.info("downloading %s into %s", source["url"], cache_dir)
        try:
            fetch(source["url"], archive, sha256=source.get("sha256"), md5=source.get("md5"))
        except DownloadError as err:
            raise MissingDataError(
                f"raw data for {name!r} not found{where} (dataset.raw_path) and could not fetch {err.url} "
                f"({err.reason}); are you offline? By hand: "
                f"download {source['url']}, unzip it, and set dataset.raw_path=/path/to/{source['member']}"
            ) from err
    return extract(archive, source["member"], cache_dir)
