"""Downloader: checksummed atomic fetches from a loopback HTTP server, extraction, and offline errors."""

from __future__ import annotations

import hashlib
import http.server
import re
import socket
import threading
import zipfile
from functools import partial
from pathlib import Path

import pytest

from cfrec.data import download
from cfrec.data.download import (
    KNOWN_SOURCES,
    ChecksumError,
    DownloadError,
    ensure_raw,
    extract,
    fetch,
)
from cfrec.data.readers import KNOWN_FORMATS

PAYLOAD = b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n" * 50


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class _Truncating(_Quiet):
    """Announces more bytes than it sends, then hangs up."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"only a few bytes")
        self.close_connection = True


@pytest.fixture
def serve(tmp_path):
    """Start a loopback HTTP server on a handler class; returns its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    servers = []

    def start(handler: type = _Quiet) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    start.root = root
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def test_fetch_verifies_and_renames(serve, tmp_path):
    (serve.root / "u.data").write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "u.data"
    got = fetch(
        f"{serve()}/u.data", dest, progress=False,
        sha256=hashlib.sha256(PAYLOAD).hexdigest(), md5=hashlib.md5(PAYLOAD).hexdigest().upper(),
    )
    assert got == dest and dest.read_bytes() == PAYLOAD
    assert leftovers(dest.parent) == []


def test_fetch_checksum_mismatch_leaves_nothing(serve, tmp_path):
    (serve.root / "u.data").write_bytes(PAYLOAD)
    dest = tmp_path / "u.data"
    with pytest.raises(ChecksumError) as excinfo:
        fetch(f"{serve()}/u.data", dest, md5="0" * 32, progress=False)
    message = str(excinfo.value)
    assert "expected " + "0" * 32 in message and hashlib.md5(PAYLOAD).hexdigest() in message
    assert not dest.exists() and leftovers(tmp_path) == []


def test_fetch_offline_says_what_to_do(tmp_path):
    with socket.socket() as sock:  # a loopback port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ml-20m.zip"
    with pytest.raises(DownloadError, match=re.escape(url)) as excinfo:
        fetch(url, tmp_path / "ml-20m.zip", progress=False)
    assert "offline" in str(excinfo.value) and "dataset.raw_path" in str(excinfo.value)
    assert list(tmp_path.iterdir()) == []


def test_fetch_http_error_and_truncation(serve, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        fetch(f"{serve()}/missing.zip", tmp_path / "missing.zip", progress=False)
    with pytest.raises(DownloadError, match="could not fetch"):
        fetch(f"{serve(_Truncating)}/cut.zip", tmp_path / "cut.zip", progress=False)
    assert list(tmp_path.iterdir()) == [serve.root]


def test_fetch_interrupted_keeps_old_file_and_no_partial(serve, tmp_path, monkeypatch):
    (serve.root / "u.data").write_bytes(PAYLOAD)
    dest = tmp_path / "u.data"
    dest.write_bytes(b"previous")

    class Interrupting(download.tqdm):
        def update(self, n: int = 1) -> None:
            raise KeyboardInterrupt

    monkeypatch.setattr(download, "tqdm", Interrupting)
    with pytest.raises(KeyboardInterrupt):
        fetch(f"{serve()}/u.data", dest, progress=False)
    assert dest.read_bytes() == b"previous" and leftovers(tmp_path) == []


def make_zip(path: Path, member: str, data: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, data)
        archive.writestr("ml-100k/README", b"readme")
    return path


def test_extract_one_member(tmp_path):
    archive = make_zip(tmp_path / "ml-100k.zip", "ml-100k/u.data", PAYLOAD)
    out = extract(archive, "ml-100k/u.data", tmp_path / "cache")
    assert out == tmp_path / "cache" / "ml-100k" / "u.data"
    assert out.read_bytes() == PAYLOAD
    assert sorted(p.name for p in out.parent.iterdir()) == ["u.data"]
    with pytest.raises(FileNotFoundError, match="no member 'ml-100k/nope'"):
        extract(archive, "ml-100k/nope", tmp_path / "cache")
    with pytest.raises(ValueError, match="outside"):
        extract(archive, "../evil", tmp_path / "cache")
    assert leftovers(out.parent) == []


def test_registry_is_consistent():
    for name, source in KNOWN_SOURCES.items():
        assert source["format"] in KNOWN_FORMATS, name
        if source["url"] is None:
            assert "dataset.raw_path" in source["obtain"], name
        else:
            assert source["url"].startswith("https://files.grouplens.org/") and source["member"], name
            assert re.fullmatch(r"[0-9a-f]{32}", source["md5"]), name


def test_ensure_raw_returns_existing_paths(tmp_path):
    train, test = tmp_path / "train.txt", tmp_path / "test.txt"
    train.write_text("0 1\n")
    test.write_text("0 2\n")
    assert ensure_raw("ml-1m", str(train), tmp_path / "cache") == [train]
    assert ensure_raw("anything", [train, test], tmp_path / "cache") == [train, test]
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("netflix", ["training_set", "nf_prize_dataset", "dataset.raw_path=/path/to/training_set"]),
        ("msd", ["train_triplets.txt", "millionsongdataset.com", "dataset.raw_path=/path/to/train_triplets.txt"]),
        ("gowalla", ["dataset.raw_path"]),
    ],
)
def test_ensure_raw_unobtainable_says_what_to_get(tmp_path, name, words):
    with pytest.raises(FileNotFoundError) as excinfo:
        ensure_raw(name, tmp_path / "missing", tmp_path / "cache")
    assert all(word in str(excinfo.value) for word in [*words, str(tmp_path / "missing")])


def test_ensure_raw_offline(tmp_path, monkeypatch):
    def offline(url, *args, **kwargs):
        raise DownloadError(url, "no network")

    monkeypatch.setattr(download, "fetch", offline)
    with pytest.raises(FileNotFoundError) as excinfo:
        ensure_raw("ml-20m", None, tmp_path)
    message = str(excinfo.value)
    assert KNOWN_SOURCES["ml-20m"]["url"] in message
    assert "dataset.raw_path=/path/to/ml-20m/ratings.csv" in message
    assert list(tmp_path.iterdir()) == []


def test_ensure_raw_downloads_extracts_then_uses_cache(serve, tmp_path, monkeypatch):
    archive = make_zip(serve.root / "ml-100k.zip", "ml-100k/u.data", PAYLOAD)
    source = {**KNOWN_SOURCES["ml-100k"], "url": f"{serve()}/ml-100k.zip",
              "md5": hashlib.md5(archive.read_bytes()).hexdigest()}
    monkeypatch.setitem(KNOWN_SOURCES, "ml-100k", source)
    cache = tmp_path / "cache"
    [path] = ensure_raw("ml-100k", None, cache)
    assert path == cache / "ml-100k" / "u.data" and path.read_bytes() == PAYLOAD
    assert (cache / "ml-100k.zip").exists()

    monkeypatch.setattr(download, "fetch", lambda *a, **k: pytest.fail("fetched again"))
    assert ensure_raw("ml-100k", None, cache) == [cache / "ml-100k" / "u.data"]
    path.unlink()  # the extracted file is gone: re-extract from the verified cached zip
    assert ensure_raw("ml-100k", None, cache)[0].read_bytes() == PAYLOAD


def test_ensure_raw_replaces_corrupt_cached_archive(serve, tmp_path, monkeypatch):
    archive = make_zip(serve.root / "ml-100k.zip", "ml-100k/u.data", PAYLOAD)
    source = {**KNOWN_SOURCES["ml-100k"], "url": f"{serve()}/ml-100k.zip",
              "md5": hashlib.md5(archive.read_bytes()).hexdigest()}
    monkeypatch.setitem(KNOWN_SOURCES, "ml-100k", source)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "ml-100k.zip").write_bytes(b"truncated")
    [path] = ensure_raw("ml-100k", None, cache)
    assert path.read_bytes() == PAYLOAD
