"""User mistakes print one line naming the option or the file (and line), exit non-zero, and show no traceback;
options are checked before any data is read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from cfrec.config import CONFIG_DIR, PROJECT_ROOT, check_config
from cfrec.data import CFDataModule, download
from cfrec.data import __main__ as data_cli
from cfrec.data.download import DownloadError, ensure_raw
from cfrec.errors import ConfigError, MissingDataError, UserError, find_user_error


def _compose(overrides: list[str]):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)


def _data_cli(capsys, tmp_path: Path, *argv: str) -> str:
    """`python -m cfrec.data ...` in-process: its exit status must be 2 and stderr exactly one line."""
    code = data_cli.main([f"dataset.cache_dir={tmp_path / 'cache'}", *argv])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_heldout_users_checked_before_any_data_is_read(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"dataset.heldout_users=-1 must be an integer >= 1"):
        CFDataModule(name="x", format="triplets", raw_path=tmp_path / "absent.csv", heldout_users=-1,
                     cache_dir=tmp_path)


@pytest.mark.parametrize(("option", "value", "message"), [
    ("test_prop", 1.5, "dataset.test_prop=1.5"), ("format", "csv", "dataset.format=csv is not a known format"),
    ("min_user_items", 2.5, "dataset.min_user_items=2.5"), ("colour", "red", "dataset.colour is not a dataset option"),
])
def test_impossible_or_unknown_dataset_options_are_named(tmp_path: Path, option, value, message):
    options = {**dict(name="x", format="synthetic", heldout_users=10, cache_dir=tmp_path), option: value}
    with pytest.raises(ConfigError, match=message):
        CFDataModule(**options)


def test_custom_dataset_without_its_options_names_them():
    cfg = _compose(["dataset=custom"])
    with pytest.raises(ConfigError) as excinfo:
        check_config(cfg.dataset, "dataset")
    assert str(excinfo.value).startswith("dataset.format, dataset.raw_path, dataset.heldout_users must be set")


def test_reader_options_are_set_without_a_plus(tmp_path: Path):
    data = tmp_path / "ratings.tsv"
    data.write_text("user\titem\tscore\n"
                    + "".join(f"u{u}\ti{(u * 7 + k) % 40}\t5\n" for u in range(60) for k in range(8)))
    cfg = _compose(["dataset=custom", "dataset.format=triplets", f"dataset.raw_path={data}", "dataset.heldout_users=10",
                    "dataset.reader.sep=\\t", "dataset.reader.header=true", "dataset.reader.columns=[user,item]",
                    f"dataset.cache_dir={tmp_path / 'cache'}"])
    dm = CFDataModule(**{k: v for k, v in cfg.dataset.items() if k != "_target_"})
    dm.setup()
    assert dm.split.counts()["train"]["users"] == 40


def test_reader_options_refused_for_a_fixed_format(tmp_path: Path):
    with pytest.raises(ConfigError, match="dataset.reader.sep is set, but only dataset.format=triplets"):
        CFDataModule(name="x", format="adjacency", raw_path="a.txt", heldout_users=1, reader={"sep": ","},
                     cache_dir=tmp_path)


def test_missing_custom_file_names_the_path_it_was_given(tmp_path: Path):
    with pytest.raises(MissingDataError) as excinfo:
        ensure_raw("custom", [tmp_path / "absent.csv"], tmp_path / "cache")
    assert str(excinfo.value) == f"dataset.raw_path: {tmp_path / 'absent.csv'} does not exist"


def test_offline_download_is_one_line_naming_the_option(tmp_path: Path, monkeypatch):
    def offline(url, *args, **kwargs):
        raise DownloadError(url, "Name or service not known")

    monkeypatch.setattr(download, "fetch", offline)
    with pytest.raises(MissingDataError) as excinfo:
        ensure_raw("ml-1m", tmp_path / "ml-1m" / "ratings.dat", tmp_path / "cache")
    message = str(excinfo.value)
    assert "\n" not in message and "dataset.raw_path=/path/to/ml-1m/ratings.dat" in message
    assert str(tmp_path / "ml-1m" / "ratings.dat") in message and "are you offline?" in message


def test_user_error_found_behind_hydras_instantiation_wrapper():
    try:
        try:
            raise ConfigError("dataset.heldout_users=-1 must be an integer >= 1")
        except ConfigError as inner:
            raise RuntimeError("Error in call to target 'cfrec.data.CFDataModule'") from inner
    except RuntimeError as outer:
        assert isinstance(find_user_error(outer), UserError)
    assert find_user_error(RuntimeError("a bug")) is None


# --------------------------------------------------------------------------- the command line: one line, exit 2

def test_data_cli_mistakes_are_one_line(capsys, tmp_path: Path, monkeypatch):
    expected = "error: dataset.heldout_users=-1 must be an integer >= 1"
    assert _data_cli(capsys, tmp_path, "dataset.heldout_users=-1") == expected
    assert "dataset.format, dataset.raw_path, dataset.heldout_users" in _data_cli(capsys, tmp_path, "dataset=custom")
    assert _data_cli(capsys, tmp_path, "dataset=nope").startswith(
        "error: dataset=nope: no such option; choose one of citeulike-a, custom,")
    bad = tmp_path / "ratings.csv"
    bad.write_text("userId,movieId,rating,timestamp\n1,2,5.0,1\nthree,4,5.0,1\n")
    line = _data_cli(capsys, tmp_path, "dataset=custom", "dataset.format=movielens-csv", f"dataset.raw_path={bad}",
                     "dataset.heldout_users=1")
    assert line == f"error: {bad}:3: user id 'three' is not an integer"
    line = _data_cli(capsys, tmp_path, "dataset=custom", "dataset.format=triplets",
                     f"dataset.raw_path={tmp_path / 'no.csv'}",
                     "dataset.heldout_users=1")
    assert line == f"error: dataset.raw_path: {tmp_path / 'no.csv'} does not exist"
    monkeypatch.setattr(download, "fetch", lambda url, *a, **k: (_ for _ in ()).throw(DownloadError(url, "offline")))
    line = _data_cli(capsys, tmp_path, "dataset=ml-1m", f"dataset.raw_path={tmp_path / 'ratings.dat'}")
    assert "raw data for 'ml-1m' not found" in line and "dataset.raw_path" in line


def test_train_mistake_is_one_line_without_traceback(tmp_path: Path):
    env = {**os.environ, "CFREC_CACHE_DIR": str(tmp_path / "cache"), "WANDB_MODE": "disabled"}
    proc = subprocess.run([sys.executable, "train.py", "dataset.heldout_users=-1", "logger=none",
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: dataset.heldout_users=-1 must be an integer >= 1"]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "cache").exists()  # refused before any data was prepared


@pytest.mark.parametrize(("override", "expected"), [
    ("model=multvae", "error: model=multvae: no such option; choose one of awae, cdae, dae, ease,"),
    ("dataset.reader.sep=,", "error: dataset.reader.sep=,: Hydra cannot parse this override; quote a value holding"
                             " , ; spaces or brackets so that Hydra receives the quotes: \"dataset.reader.sep=','\""),
    ("dataset.reader.seperator=x", "error: dataset.reader.seperator: no such option; check its spelling"),
])
def test_hydras_composition_errors_are_one_line_and_exit_2(tmp_path: Path, override: str, expected: str):
    """An unknown preset, an override Hydra's parser rejects (the shell took `','`'s quotes) and a misspelt key
    fail while Hydra composes the config: train.py still gives one `error:` line and exit status 2."""
    env = {**os.environ, "CFREC_CACHE_DIR": str(tmp_path / "cache"), "WANDB_MODE": "disabled"}
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.run([sys.executable, "train.py", override, "logger=none", f"hydra.run.dir={tmp_path / 'run'}"],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and "Set the environment variable" not in proc.stderr


def test_a_quoted_comma_separator_reaches_the_reader(tmp_path: Path):
    """`"dataset.reader.sep=','"`, the quoting the error advises, composes to the separator `,`."""
    assert _compose(["dataset=custom", "dataset.reader.sep=','"]).dataset.reader.sep == ","


def test_an_added_reader_key_is_one_line_naming_the_reader_options(capsys, tmp_path: Path):
    """`+dataset.reader.seperator='\\t'` (Hydra's advice for a key it does not know) is refused before reading."""
    data = tmp_path / "ratings.tsv"
    data.write_text("u1\ti1\n")
    line = _data_cli(capsys, tmp_path, "dataset=custom", "dataset.format=triplets", f"dataset.raw_path={data}",
                     "dataset.heldout_users=1", "+dataset.reader.seperator=\\t")
    assert line == "error: dataset.reader.seperator is not a reader option (options: sep, header, columns, comment)"


def test_a_missing_separator_is_named_not_columns(capsys, tmp_path: Path):
    """A tab-separated file read with the default `,` has one field a line: the error names the separator (and
    how to set it), not `dataset.reader.columns`, which the user never set."""
    data = tmp_path / "ratings.tsv"
    data.write_text("".join(f"u{u}\ti{k}\t5\n" for u in range(20) for k in range(6)))
    line = _data_cli(capsys, tmp_path, "dataset=custom", "dataset.format=triplets", f"dataset.raw_path={data}",
                     "dataset.heldout_users=2")
    assert line == (f"error: {data}:1: 1 field(s) separated by ',' (the default separator); a user and an item field"
                    " are needed: set the file's separator, e.g. \"dataset.reader.sep='\\t'\"")
    assert "columns" not in line
