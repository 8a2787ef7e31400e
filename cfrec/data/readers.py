"""Readers turning raw rating / interaction files into one `user, item, rating` table.

Every reader takes the fast path first (pandas' C parser or one numpy pass, typed columns);
only when that fails does a line-by-line scan run, to name the exact file and line at fault.
"""

from __future__ import annotations

import csv
import inspect
import io
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cfrec.errors import ConfigError, DataError, MissingDataError

COLUMNS = ("user", "item", "rating")  # the output table of every reader, in this order
_NETFLIX_BATCH_BYTES = 256 * 2**20  # Netflix training_set files are parsed this many bytes at a time


class DataFormatError(DataError):
    """A raw data file does not match its declared format; the message names file:line."""


@dataclass(frozen=True)
class _Layout:
    """Where user / item / rating sit in a delimited file, and what a valid line looks like."""

    sep: str
    user: int
    item: int
    rating: int | None
    min_fields: int
    max_fields: int | None
    int_ids: bool
    header: bool = False
    comment: str | None = None
    hint: str = ""  # appended to field-count / rating errors, e.g. which option to change

    def split(self, line: str) -> list[str]:
        """Split one line the way the fast parser does (used only to locate errors)."""
        if self.sep == r"\s+":
            return line.split()
        if len(self.sep) == 1:
            return next(csv.reader([line], delimiter=self.sep))
        return re.split(self.sep, line)


def read_interactions(
    fmt: str, paths: str | Path | Sequence[str | Path], **options: object
) -> pd.DataFrame:
    """Read raw interaction files of format `fmt` (read in order, concatenated) into user/item/rating."""
    if fmt not in KNOWN_FORMATS:
        known = ", ".join(KNOWN_FORMATS)
        raise ConfigError(f"unknown data format {fmt!r} (dataset.format); known formats: {known}")
    if options and fmt != "triplets":
        raise ConfigError(
            f"format {fmt!r} (dataset.format) takes no options, got: {', '.join(sorted(options))}"
        )
    check_reader_options(options)
    files = _resolve(fmt, paths)
    if fmt == "netflix":
        return _read_netflix(files)
    frames = [_READERS[fmt](path, **options) for path in files]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _resolve(fmt: str, paths: str | Path | Sequence[str | Path]) -> list[Path]:
    """The files to read: `paths` in order, a Netflix `training_set` directory expanded to its mv_*.txt."""
    given = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not given:
        raise ConfigError("no raw data file given; set dataset.raw_path")
    files: list[Path] = []
    for path in given:
        if not path.exists():
            raise MissingDataError(f"{path}: no such file (dataset.raw_path)")
        if path.is_dir():
            if fmt != "netflix":
                raise ConfigError(
                    f"{path} is a directory; set dataset.raw_path to the {fmt} file(s) themselves"
                )
            found = sorted(path.glob("mv_*.txt"))
            if not found:
                raise MissingDataError(
                    f"{path}: no mv_*.txt files (the Netflix Prize training_set); check dataset.raw_path"
                )
            files.extend(found)
        else:
            files.append(path)
    return files


def _frame(user: object, item: object, rating: object) -> pd.DataFrame:
    """The common output table."""
    return pd.DataFrame(dict(zip(COLUMNS, (user, item, rating))))


def _empty(path: Path) -> DataFormatError:
    return DataFormatError(f"{path}: no interactions (the file is empty)")


# --- delimited formats (pandas C parser) -------------------------------------------------------


def _read_delimited(path: Path, layout: _Layout) -> pd.DataFrame:
    """Parse a delimited file with typed columns; on any problem, locate the bad line."""
    cols = [c for c in (layout.user, layout.item, layout.rating) if c is not None]
    # With a fixed field count every column is parsed (other columns as numbers, i.e. timestamps),
    # since pandas silently ignores surplus fields only when `usecols` is given.
    dtype: dict[int, object] = dict.fromkeys(range(layout.max_fields or 0), np.float64)
    dtype.update(dict.fromkeys((layout.user, layout.item), np.int64 if layout.int_ids else str))
    if layout.rating is not None:
        dtype[layout.rating] = np.float64
    try:
        df = pd.read_csv(
            path,
            sep=layout.sep,
            header=None,
            names=range(layout.max_fields) if layout.max_fields else None,
            skiprows=[_first_line(path, layout.comment)[0]] if layout.header else None,
            usecols=None if layout.max_fields else cols,
            dtype=dtype,
            comment=layout.comment,
            keep_default_na=False,
            na_values=[""],
        )
    except pd.errors.EmptyDataError:
        raise _empty(path) from None
    except ValueError as err:  # pandas' ParserError is a ValueError too
        raise _locate(path, layout, err) from None
    if df.empty:
        raise _empty(path)
    if df[cols].isna().any().any():
        raise _locate(path, layout, None)
    rating = df[layout.rating] if layout.rating is not None else np.nan
    return _frame(df[layout.user].to_numpy(), df[layout.item].to_numpy(), rating)


def _first_line(path: Path, comment: str | None) -> tuple[int, str]:
    """0-based index and text of the first non-blank, non-comment line (the header, if any)."""
    with path.open(encoding="utf-8", errors="replace") as fh:
        for index, raw in enumerate(fh):
            line = _strip(raw, comment)
            if line:
                return index, line
    raise _empty(path)


def _strip(line: str, comment: str | None) -> str:
    """A line without its comment and line ending."""
    if comment:
        line = line.split(comment, 1)[0]
    return line.strip()


def _locate(path: Path, layout: _Layout, err: Exception | None) -> DataFormatError:
    """Scan `path` line by line for the first line the fast parser rejected."""
    header_pending = layout.header
    with path.open(encoding="utf-8", errors="replace") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = _strip(raw, layout.comment)
            if not line:
                continue
            if header_pending:
                header_pending = False
                continue
            problem = _check_fields(layout.split(line), layout)
            if problem:
                return DataFormatError(f"{path}:{lineno}: {problem}")
    detail = f": {err}" if err else ""
    return DataFormatError(f"{path}: could not be parsed{detail}")


def _check_fields(fields: list[str], layout: _Layout) -> str | None:
    """What is wrong with one line's fields, or None."""
    n = len(fields)
    if n < layout.min_fields or (layout.max_fields and n > layout.max_fields):
        want = f"{layout.min_fields} to {layout.max_fields}" if layout.max_fields else (
            f"at least {layout.min_fields}"
        )
        return f"expected {want} fields separated by {layout.sep!r}, got {n}{layout.hint}"
    for name, pos in (("user id", layout.user), ("item id", layout.item)):
        value = fields[pos].strip()
        if not value:
            return f"{name} is missing{layout.hint}"
        if layout.int_ids and not _is_int(value):
            return f"{name} {value!r} is not an integer"
    if layout.rating is not None and not _is_number(fields[layout.rating]):
        return f"rating {fields[layout.rating].strip()!r} is not a number{layout.hint}"
    return None


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _is_number(text: str) -> bool:
    try:
        return not math.isnan(float(text))
    except ValueError:
        return False


def _read_movielens_csv(path: Path) -> pd.DataFrame:
    """ML-20M / ML-25M `ratings.csv`: header `userId,movieId,rating,timestamp`."""
    with path.open(encoding="utf-8", errors="replace") as fh:
        first = fh.readline().strip()
    if not first:
        raise _empty(path)
    if first.split(",")[:3] != ["userId", "movieId", "rating"]:
        raise DataFormatError(
            f"{path}:1: expected the header 'userId,movieId,rating,timestamp', got {first[:80]!r}"
            " (is dataset.format right?)"
        )
    layout = _Layout(",", 0, 1, 2, 3, 4, int_ids=True, header=True)
    return _read_delimited(path, layout)


def _read_movielens_tsv(path: Path) -> pd.DataFrame:
    """ML-100k `u.data`: tab-separated `user item rating timestamp`, no header."""
    return _read_delimited(path, _Layout("\t", 0, 1, 2, 3, 4, int_ids=True))


def _read_movielens_dat(path: Path) -> pd.DataFrame:
    """ML-1M / ML-10M `ratings.dat`: `UserID::MovieID::Rating::Timestamp`, no header.

    Parsed by the C engine with ':' as separator (a two-character separator would force the slow
    Python engine): the ids and rating land in columns 0, 2, 4 and columns 1, 3, 5 must stay empty.
    """
    layout = _Layout("::", 0, 1, 2, 3, 4, int_ids=True)
    try:
        df = pd.read_csv(
            path,
            sep=":",
            header=None,
            names=range(7),
            dtype={0: np.int64, 2: np.int64, **dict.fromkeys((1, 3, 4, 5, 6), np.float64)},
        )
    except pd.errors.EmptyDataError:
        raise _empty(path) from None
    except ValueError as err:
        raise _locate(path, layout, err) from None
    if df.empty:
        raise _empty(path)
    if df[[1, 3, 5]].notna().any().any() or df[4].isna().any():
        raise _locate(path, layout, None)
    return _frame(df[0].to_numpy(), df[2].to_numpy(), df[4].to_numpy())


def _read_msd_triplets(path: Path) -> pd.DataFrame:
    """Taste Profile `train_triplets.txt`: tab-separated `user_hash song_id play_count`."""
    return _read_delimited(path, _Layout("\t", 0, 1, 2, 3, 3, int_ids=False))


def _read_triplets(
    path: Path,
    sep: str | None = None,
    header: bool = False,
    columns: Sequence[int | str] | None = None,
    comment: str | None = None,
) -> pd.DataFrame:
    """A user-supplied delimited file; `columns` picks user, item[, rating] by position or header name.

    `sep` defaults to ","; `sep="\\t"` (a backslash and a t, as `dataset.reader.sep='\\t'` reaches us from the
    command line) means a tab.
    """
    given = sep is not None
    sep = "," if sep is None else "\t" if sep == "\\t" else sep
    hint = " (check dataset.reader.sep / dataset.reader.columns / dataset.reader.header)"
    index, line = _first_line(path, comment)
    first = _Layout(sep, 0, 1, None, 0, None, int_ids=False).split(line)
    positions = _column_positions(path, columns, first, header)
    if len(first) <= max(positions):
        where = f"{path}:{index + 1}: {len(first)} field(s) separated by {sep!r}"
        if columns is None:
            raise DataFormatError(f"{where} ({'dataset.reader.sep' if given else 'the default separator'}); a "
                                  f"user and an item field are needed: {_separator_advice(line)}")
        raise DataFormatError(f"{where}, but dataset.reader.columns needs {max(positions) + 1}{hint}")
    layout = _Layout(
        sep, positions[0], positions[1], positions[2] if len(positions) == 3 else None,
        max(positions) + 1, None, int_ids=False, header=header, comment=comment, hint=hint,
    )
    df = _read_delimited(path, layout)
    df["user"], df["item"] = _int_if_possible(df["user"]), _int_if_possible(df["item"])
    return df


def _separator_advice(line: str) -> str:
    """How to set `dataset.reader.sep` for a file whose first line is `line` (quoted as the shell needs)."""
    for char, value in (("\t", "\\t"), (";", ";"), ("|", "|"), (" ", "\\s+")):
        if char in line.strip():
            return f"set the file's separator, e.g. \"dataset.reader.sep='{value}'\""
    return "set the file's separator, e.g. \"dataset.reader.sep='\\t'\" (tab) or \"dataset.reader.sep=';'\""


#: the options of `dataset.format=triplets` (`dataset.reader.<option>`)
READER_OPTIONS: tuple[str, ...] = tuple(inspect.signature(_read_triplets).parameters)[1:]


def check_reader_options(options: Mapping[str, object]) -> None:
    """Raise ConfigError naming the first `dataset.reader.<key>` that is no reader option, and the valid ones."""
    for key in options:
        if key not in READER_OPTIONS:
            raise ConfigError(f"dataset.reader.{key} is not a reader option (options: {', '.join(READER_OPTIONS)})")


def _column_positions(
    path: Path, columns: Sequence[int | str] | None, first: list[str], header: bool
) -> list[int]:
    """Resolve `dataset.reader.columns` (positions or header names) to field positions."""
    if columns is None:
        return [0, 1, 2] if len(first) > 2 else [0, 1]
    if isinstance(columns, str) or len(columns) not in (2, 3):
        raise ConfigError(
            f"dataset.reader.columns must list 2 or 3 columns (user, item[, rating]), got {columns!r}"
        )
    names = [f.strip() for f in first]
    positions = []
    for col in columns:
        if isinstance(col, str):
            if not header:
                raise ConfigError(f"dataset.reader.columns names {col!r} but dataset.reader.header is false")
            if col not in names:
                raise DataFormatError(
                    f"{path}:1: dataset.reader.columns names {col!r}, not in the header {names}"
                )
            positions.append(names.index(col))
        else:
            positions.append(int(col))
    if len(set(positions)) != len(positions) or min(positions) < 0:
        raise ConfigError(f"dataset.reader.columns must name distinct columns, got {columns!r}")
    return positions


def _int_if_possible(ids: pd.Series) -> pd.Series:
    """Raw ids as int64 when every one is an integer, else unchanged strings."""
    try:
        return ids.astype(np.int64)
    except (ValueError, OverflowError):
        return ids


# --- line-list formats (split once, numpy) -----------------------------------------------------


def _tokenize(path: Path, first_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Token count per line and all whitespace-separated tokens as int64 (`first_name`: a line's first).

    Both come from whole-buffer numpy passes; only a malformed file is re-read line by line.
    """
    raw = path.read_bytes()
    if not raw or raw.isspace():
        raise _empty(path)
    buf = np.frombuffer(raw, dtype=np.uint8)
    space = np.isin(buf, _WHITESPACE)
    starts = np.flatnonzero(~space & np.concatenate(([True], space[:-1])))
    newlines = np.flatnonzero(buf == ord("\n"))
    n_lines = len(newlines) + (not raw.endswith(b"\n"))
    lengths = np.bincount(np.searchsorted(newlines, starts), minlength=n_lines)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy warns, or in future raises, on an unparsable token
            values = np.fromstring(raw, dtype=np.int64, sep=" ")
    except (ValueError, DeprecationWarning):
        values = np.empty(0, dtype=np.int64)
    if len(values) != len(starts):
        raise _locate_token(path, first_name)
    return lengths, values


_WHITESPACE = np.frombuffer(b" \t\n\r\v\f", dtype=np.uint8)


def _locate_token(path: Path, first_name: str) -> DataFormatError:
    """The first token of a whitespace-separated file that is not an integer."""
    with path.open(encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            for pos, token in enumerate(line.split()):
                if not _is_int(token):
                    name = first_name if pos == 0 else "item id"
                    return DataFormatError(f"{path}:{lineno}: {name} {token!r} is not an integer")
    return DataFormatError(f"{path}: could not be parsed as whitespace-separated integers")


def _read_adjacency(path: Path) -> pd.DataFrame:
    """`user item item ...` per line, whitespace separated (LightGCN / NGCF style)."""
    lengths, values = _tokenize(path, "user id")
    starts = np.cumsum(lengths) - lengths
    used = lengths > 0
    is_item = np.ones(len(values), dtype=bool)
    is_item[starts[used]] = False
    users = np.repeat(values[starts[used]], lengths[used] - 1)
    if len(users) == 0:
        raise _empty(path)
    return _frame(users, values[is_item], np.nan)


def _read_counted(path: Path) -> pd.DataFrame:
    """`n item_1 .. item_n` per line; the 0-based line number is the user (citeulike `users.dat`)."""
    lengths, values = _tokenize(path, "count")
    starts = np.cumsum(lengths) - lengths
    bad = np.flatnonzero((lengths == 0) | (values[np.minimum(starts, len(values) - 1)] != lengths - 1))
    if len(bad):
        line = int(bad[0])
        if lengths[line] == 0:
            problem = "empty line, expected 'n item_1 .. item_n' (the line number is the user)"
        else:
            problem = f"count {values[starts[line]]} but {lengths[line] - 1} item ids follow"
        raise DataFormatError(f"{path}:{line + 1}: {problem}")
    is_item = np.ones(len(values), dtype=bool)
    is_item[starts] = False
    users = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths - 1)
    if len(users) == 0:
        raise _empty(path)
    return _frame(users, values[is_item], np.nan)


# --- Netflix Prize ------------------------------------------------------------------------------


def _read_netflix(files: list[Path]) -> pd.DataFrame:
    """Netflix `mv_*.txt` / `combined_data_*.txt` files, several small files parsed per pandas call."""
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    batch: list[tuple[Path, bytes]] = []
    size = 0
    for path in files:
        raw = path.read_bytes()
        if not raw or raw.isspace():
            raise _empty(path)
        batch.append((path, raw if raw.endswith(b"\n") else raw + b"\n"))
        size += len(raw)
        if size >= _NETFLIX_BATCH_BYTES:
            parts.append(_netflix_batch(batch))
            batch, size = [], 0
    if batch:
        parts.append(_netflix_batch(batch))
    users, items, ratings = (np.concatenate(cols) for cols in zip(*parts))
    return _frame(users, items, ratings)


def _netflix_batch(batch: list[tuple[Path, bytes]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse files joined into one buffer; on failure, find the file and line at fault."""
    parsed = _parse_netflix(batch[0][1] if len(batch) == 1 else b"".join(raw for _, raw in batch))
    if parsed is None:
        for path, raw in batch:
            if _parse_netflix(raw) is None:
                raise _locate_netflix(path)
        raise DataFormatError(f"{batch[0][0]}: Netflix files could not be parsed together")
    return parsed


def _parse_netflix(raw: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(customer, movie, rating) arrays from `<movie_id>:` blocks of `customer,rating,date` lines.

    ':' is read as a comment character, so a `<movie_id>:` line becomes a one-field row whose
    rating is NaN; the movie id is then forward-filled. Returns None when the text is malformed.
    """
    try:
        df = pd.read_csv(
            io.BytesIO(raw),
            header=None,
            names=["customer", "rating", "date"],
            usecols=["customer", "rating"],
            dtype={"customer": np.int64, "rating": np.float64},
            comment=":",
        )
    except ValueError:
        return None
    customer, rating = df["customer"].to_numpy(), df["rating"].to_numpy()
    heads = np.flatnonzero(np.isnan(rating))
    n_movie_lines = raw.count(b":\n") + raw.count(b":\r\n")
    if len(heads) == 0 or heads[0] != 0 or len(heads) != n_movie_lines:
        return None
    block_sizes = np.diff(np.append(heads, len(df))) - 1
    movies = np.repeat(customer[heads], block_sizes)
    is_rating = np.ones(len(df), dtype=bool)
    is_rating[heads] = False
    return customer[is_rating], movies, rating[is_rating]


_MOVIE_LINE = re.compile(r"^\d+:$")


def _locate_netflix(path: Path) -> DataFormatError:
    """The first malformed line of one Netflix file."""
    seen_movie = False
    with path.open(encoding="utf-8", errors="replace") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            if _MOVIE_LINE.match(line):
                seen_movie = True
                continue
            problem = _netflix_line_problem(line, seen_movie)
            if problem:
                return DataFormatError(f"{path}:{lineno}: {problem}")
    return DataFormatError(f"{path}: could not be parsed as Netflix Prize data")


def _netflix_line_problem(line: str, seen_movie: bool) -> str | None:
    """What is wrong with one non-movie line of a Netflix file, or None."""
    if ":" in line:
        return f"expected '<movie_id>:', got {line[:40]!r}"
    if not seen_movie:
        return "rating line before any '<movie_id>:' line"
    fields = line.split(",")
    if len(fields) not in (2, 3):
        return f"expected 'customer_id,rating,date', got {line[:40]!r}"
    if not _is_int(fields[0]):
        return f"customer id {fields[0]!r} is not an integer"
    if not _is_number(fields[1]):
        return f"rating {fields[1]!r} is not a number"
    return None


_READERS: dict[str, Callable[..., pd.DataFrame]] = {
    "movielens-csv": _read_movielens_csv,
    "movielens-dat": _read_movielens_dat,
    "movielens-tsv": _read_movielens_tsv,
    "msd-triplets": _read_msd_triplets,
    "triplets": _read_triplets,
    "adjacency": _read_adjacency,
    "counted": _read_counted,
}
KNOWN_FORMATS: tuple[str, ...] = tuple(sorted([*_READERS, "netflix"]))
