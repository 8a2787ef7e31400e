"""Raw-data readers: every format on tiny fixtures, bad input naming file:line, and the real samples."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cfrec.data.readers import KNOWN_FORMATS, DataFormatError, read_interactions

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def rows(df: pd.DataFrame) -> list[tuple]:
    """(user, item, rating) tuples, NaN ratings as None, for easy comparison."""
    return [(u, i, None if np.isnan(r) else r) for u, i, r in df.itertuples(index=False)]


def assert_located(excinfo: pytest.ExceptionInfo, path: Path, line: int, *words: str) -> None:
    message = str(excinfo.value)
    assert message.startswith(f"{path}:{line}: "), message
    for word in words:
        assert word in message, message


# --- formats ------------------------------------------------------------------------------------


def test_movielens_csv(tmp_path):
    path = write(tmp_path, "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3.5,1112486027\n7,9,5.0,1\n")
    df = read_interactions("movielens-csv", path)
    assert list(df.columns) == ["user", "item", "rating"]
    assert df.dtypes.tolist() == [np.int64, np.int64, np.float64]
    assert rows(df) == [(1, 2, 3.5), (7, 9, 5.0)]


def test_movielens_dat(tmp_path):
    path = write(tmp_path, "ratings.dat", "1::1193::5::978300760\n2::661::3::978302109\n")
    df = read_interactions("movielens-dat", str(path))
    assert df.dtypes.tolist() == [np.int64, np.int64, np.float64]
    assert rows(df) == [(1, 1193, 5.0), (2, 661, 3.0)]


def test_movielens_tsv(tmp_path):
    path = write(tmp_path, "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    assert rows(read_interactions("movielens-tsv", path)) == [(196, 242, 3.0), (186, 302, 3.0)]


def test_netflix_training_set_dir_files_and_combined(tmp_path):
    write(tmp_path, "training_set/mv_0000002.txt", "2:\n30,3,2005-09-06\n")
    write(tmp_path, "training_set/mv_0000001.txt", "1:\n10,5,2005-09-06\n20,4,2005-05-13")
    write(tmp_path, "training_set/notes.txt", "not a ratings file\n")
    expected = [(10, 1, 5.0), (20, 1, 4.0), (30, 2, 3.0)]
    df = read_interactions("netflix", tmp_path / "training_set")
    assert df.dtypes.tolist() == [np.int64, np.int64, np.float64]
    assert rows(df) == expected
    files = sorted((tmp_path / "training_set").glob("mv_*.txt"))
    assert rows(read_interactions("netflix", files)) == expected
    combined = write(tmp_path, "combined_data_1.txt", "1:\n10,5,2005-09-06\n20,4,2005-05-13\n2:\n30,3,2005-09-06\n")
    assert rows(read_interactions("netflix", combined)) == expected


def test_netflix_windows_line_endings(tmp_path):
    path = write(tmp_path, "mv_0000001.txt", "")
    path.write_bytes(b"1:\r\n10,5,2005-09-06\r\n")
    assert rows(read_interactions("netflix", path)) == [(10, 1, 5.0)]


def test_msd_triplets_keeps_string_ids(tmp_path):
    path = write(
        tmp_path, "train_triplets.txt",
        "b80344d063b5ccb3212f76538f3d9e43d87dca9e\tSOAKIMP12A8C130995\t1\nNA\tSOBBMDR12A8C13253B\t2\n",
    )
    df = read_interactions("msd-triplets", path)
    assert df["rating"].dtype == np.float64
    assert rows(df) == [
        ("b80344d063b5ccb3212f76538f3d9e43d87dca9e", "SOAKIMP12A8C130995", 1.0),
        ("NA", "SOBBMDR12A8C13253B", 2.0),
    ]


def test_triplets_defaults_and_rating_detection(tmp_path):
    two = write(tmp_path, "two.csv", "1,10\n2,20\n")
    three = write(tmp_path, "three.csv", "1,10,0.5\n2,20,1\n")
    assert rows(read_interactions("triplets", two)) == [(1, 10, None), (2, 20, None)]
    df = read_interactions("triplets", three)
    assert df.dtypes.tolist() == [np.int64, np.int64, np.float64]
    assert rows(df) == [(1, 10, 0.5), (2, 20, 1.0)]


def test_triplets_header_names_sep_and_comment(tmp_path):
    path = write(tmp_path, "log.tsv", "# exported\n\nts\titem\tuser\tscore\n5\tx\tu1\t2 # late\n6\ty\tu2\t4\n")
    df = read_interactions(
        "triplets", path, sep="\t", header=True, columns=["user", "item", "score"], comment="#"
    )
    assert rows(df) == [("u1", "x", 2.0), ("u2", "y", 4.0)]
    df = read_interactions("triplets", path, sep="\t", header=True, columns=[2, 1], comment="#")
    assert rows(df) == [("u1", "x", None), ("u2", "y", None)]


def test_adjacency(tmp_path):
    path = write(tmp_path, "train.txt", "0 5 6 7\n1 5\n\n2\n3\t8  9 \n")
    df = read_interactions("adjacency", path)
    assert df.dtypes.tolist() == [np.int64, np.int64, np.float64]
    assert rows(df) == [(0, 5, None), (0, 6, None), (0, 7, None), (1, 5, None), (3, 8, None), (3, 9, None)]


def test_counted_line_number_is_user(tmp_path):
    path = write(tmp_path, "users.dat", "2 4 5\n0\n1 9")
    assert rows(read_interactions("counted", path)) == [(0, 4, None), (0, 5, None), (2, 9, None)]


def test_several_paths_are_concatenated_in_order(tmp_path):
    train = write(tmp_path, "train.txt", "0 1 2\n1 3\n")
    test = write(tmp_path, "test.txt", "0 4\n")
    df = read_interactions("adjacency", [train, test])
    assert rows(df) == [(0, 1, None), (0, 2, None), (1, 3, None), (0, 4, None)]
    assert df.index.tolist() == [0, 1, 2, 3]


# --- errors -------------------------------------------------------------------------------------


def test_unknown_format_lists_known_and_option(tmp_path):
    with pytest.raises(ValueError, match="dataset.format") as excinfo:
        read_interactions("parquet", tmp_path / "x")
    assert all(fmt in str(excinfo.value) for fmt in KNOWN_FORMATS)


def test_options_rejected_for_fixed_formats(tmp_path):
    path = write(tmp_path, "u.data", "1\t2\t3\t4\n")
    with pytest.raises(ValueError, match="takes no options"):
        read_interactions("movielens-tsv", path, sep=",")


def test_missing_file_names_raw_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset.raw_path"):
        read_interactions("movielens-csv", tmp_path / "nope.csv")
    with pytest.raises(FileNotFoundError, match="dataset.raw_path"):
        read_interactions("netflix", tmp_path)  # a directory without mv_*.txt


@pytest.mark.parametrize("fmt", sorted(set(KNOWN_FORMATS)))
@pytest.mark.parametrize("text", ["", "\n\n"])
def test_empty_file(tmp_path, fmt, text):
    path = write(tmp_path, "empty.txt", text)
    with pytest.raises(DataFormatError, match=re.escape(str(path))):
        read_interactions(fmt, path)


def test_header_only_is_empty(tmp_path):
    path = write(tmp_path, "ratings.csv", "userId,movieId,rating,timestamp\n")
    with pytest.raises(DataFormatError, match="no interactions"):
        read_interactions("movielens-csv", path)


@pytest.mark.parametrize(
    ("fmt", "name", "text", "line", "words"),
    [
        ("movielens-csv", "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3,4\nabc,2,3,4\n", 3,
         ["user id 'abc' is not an integer"]),
        ("movielens-csv", "ratings.csv", "1,2,3,4\n", 1, ["header"]),
        ("movielens-csv", "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n1,2,x,4\n", 3,
         ["rating 'x' is not a number"]),
        ("movielens-csv", "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n1,2,3,4,5\n", 3,
         ["fields"]),
        ("movielens-dat", "ratings.dat", "1::2::3::4\n1::2.5::3::4\n", 2, ["item id '2.5'"]),
        ("movielens-dat", "ratings.dat", "1::2::3::4\n1:2:3:4\n", 2, ["fields", "'::'"]),
        ("movielens-dat", "ratings.dat", "1::2::3::4\n1::2\n", 2, ["fields"]),
        ("movielens-tsv", "u.data", "1\t2\t3\t4\n\n1\t2\n", 3, ["fields"]),
        ("movielens-tsv", "u.data", "1,2,3,4\n", 1, ["fields", "'\\t'"]),
        ("netflix", "mv_0000001.txt", "1:\n10,5,2005\n1x,5,2005\n", 3, ["customer id '1x'"]),
        ("netflix", "mv_0000001.txt", "1:\n10,5,2005\n11,,2005\n", 3, ["rating ''"]),
        ("netflix", "mv_0000001.txt", "10,5,2005\n", 1, ["before any"]),
        ("netflix", "mv_0000001.txt", "1:\n10,5,2005\n2: \n", 3, ["'<movie_id>:'"]),
        ("netflix", "mv_0000001.txt", "1:\n12:3,4\n", 2, ["'<movie_id>:'"]),
        ("msd-triplets", "train_triplets.txt", "u\ts\t1\nu\ts\tmany\n", 2, ["rating 'many'"]),
        ("msd-triplets", "train_triplets.txt", "u\ts\t1\nu s 1\n", 2, ["fields"]),
        ("adjacency", "train.txt", "0 1 2\n1 3 x\n", 2, ["item id 'x'"]),
        ("adjacency", "train.txt", "0 1 2\nu1 3\n", 2, ["user id 'u1'"]),
        ("counted", "users.dat", "2 4 5\n3 1 2\n", 2, ["count 3 but 2 item ids"]),
        ("counted", "users.dat", "1 4\n\n1 2\n", 2, ["empty line"]),
        ("counted", "users.dat", "1 4\n1 b\n", 2, ["item id 'b'"]),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, fmt, name, text, line, words):
    path = write(tmp_path, name, text)
    with pytest.raises(DataFormatError) as excinfo:
        read_interactions(fmt, path)
    assert_located(excinfo, path, line, *words)


def test_netflix_bad_file_found_among_many(tmp_path):
    write(tmp_path, "training_set/mv_0000001.txt", "1:\n10,5,2005\n")
    bad = write(tmp_path, "training_set/mv_0000002.txt", "2:\n10,5,2005\n10;4;2005\n")
    with pytest.raises(DataFormatError) as excinfo:
        read_interactions("netflix", tmp_path / "training_set")
    assert_located(excinfo, bad, 3, "customer_id,rating,date")


def test_triplets_errors_name_the_options(tmp_path):
    tabbed = write(tmp_path, "tabbed.txt", "1\t2\t3\n")
    with pytest.raises(DataFormatError) as excinfo:
        read_interactions("triplets", tabbed)
    assert_located(excinfo, tabbed, 1, "dataset.reader.sep")
    ragged = write(tmp_path, "ragged.csv", "1,2,3\n4,5\n")
    with pytest.raises(DataFormatError) as excinfo:
        read_interactions("triplets", ragged)
    assert_located(excinfo, ragged, 2, "fields", "dataset.reader.columns")
    headed = write(tmp_path, "headed.csv", "u,i\n1,2\n")
    with pytest.raises(DataFormatError, match="'score', not in the header"):
        read_interactions("triplets", headed, header=True, columns=["u", "score"])
    with pytest.raises(ValueError, match="dataset.reader.header"):
        read_interactions("triplets", headed, columns=["u", "i"])
    with pytest.raises(ValueError, match="2 or 3"):
        read_interactions("triplets", headed, columns=[0, 1, 2, 3])


# --- real samples (skipped without ../shared/data) ----------------------------------------------


def shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


def test_real_ml1m_adjacency_train_plus_test():
    df = read_interactions("adjacency", [shared("ml-1m", "train.txt"), shared("ml-1m", "test.txt")])
    assert len(df) == 1_000_209
    assert df["user"].nunique() == 6_040
    assert df["item"].nunique() == 3_706
    assert not df.duplicated(["user", "item"]).any()


def test_real_citeulike_counted():
    df = read_interactions("counted", shared("citeulike-a", "users.dat"))
    assert len(df) == 204_986
    assert df["user"].nunique() == 5_551
    assert df["item"].nunique() == 16_980


def test_real_ml100k_tsv():
    df = read_interactions("movielens-tsv", shared("ml-100k", "u.data"))
    assert len(df) == 100_000
    assert (df["user"].nunique(), df["item"].nunique()) == (943, 1_682)
    histogram = df["rating"].value_counts().sort_index().to_dict()
    assert histogram == {1.0: 6_110, 2.0: 11_370, 3.0: 27_145, 4.0: 34_174, 5.0: 21_201}


def test_real_gowalla_adjacency():
    df = read_interactions("adjacency", [shared("gowalla", "train.txt"), shared("gowalla", "test.txt")])
    assert len(df) == 1_027_370
    assert (df["user"].nunique(), df["item"].nunique()) == (29_858, 40_981)
