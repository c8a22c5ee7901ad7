"""The content-addressed media store: atomic puts, dedup by content, strict names, sniffing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from monitor.archive.media_store import (
    InvalidMediaName,
    MediaStore,
    MediaUsage,
    extension_for,
    is_sha256,
    sniff_mime,
)

DATA = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_put_stores_under_the_content_address_with_both_hashes(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media")
    stored = store.put([DATA[:100], DATA[100:5000], DATA[5000:]])
    digest = sha(DATA)
    assert stored.sha256 == digest and stored.size == len(DATA) and stored.created
    assert stored.md5 == hashlib.md5(DATA).hexdigest()
    path = store.path(digest)
    assert path == tmp_path / "media" / digest[:2] / digest[2:4] / digest
    assert path.read_bytes() == DATA
    with store.open(digest) as file:
        assert file.read() == DATA
    assert store.exists(digest)
    assert list((tmp_path / "media" / "tmp").iterdir()) == []  # the temp file became the file


def test_same_content_is_stored_once(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    first = store.put([DATA])
    mtime = store.path(first.sha256).stat().st_mtime_ns
    again = store.put([DATA[:10], DATA[10:]])
    assert (again.sha256, again.created) == (first.sha256, False)
    assert store.path(first.sha256).stat().st_mtime_ns == mtime  # not rewritten
    other = store.put([b"other bytes"])
    assert other.created
    assert store.usage() == MediaUsage(files=2, bytes=len(DATA) + len(b"other bytes"))
    assert list((tmp_path / "tmp").iterdir()) == []


def test_put_file_copies_a_file(tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(DATA)
    store = MediaStore(tmp_path / "store")
    stored = store.put_file(source, chunk_bytes=1000)
    assert store.path(stored.sha256).read_bytes() == DATA


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)

    def chunks():  # type: ignore[no-untyped-def]
        yield DATA[:100]
        raise RuntimeError("the download broke")

    with pytest.raises(RuntimeError):
        store.put(chunks())
    assert list((tmp_path / "tmp").iterdir()) == []
    assert store.usage() == MediaUsage(0, 0)
    with store.sink() as sink:  # abort without commit: likewise
        sink.write(DATA)
        assert sink.size == len(DATA) and sink.head == DATA[:16]
        assert sink.md5 == hashlib.md5(DATA).hexdigest()
    assert list((tmp_path / "tmp").iterdir()) == []
    with pytest.raises(ValueError, match="closed"):
        sink.write(b"x")


def test_a_file_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    """Until commit the bytes are only in tmp/; the final name never holds a partial file."""
    store = MediaStore(tmp_path)
    sink = store.sink()
    sink.write(DATA[:1000])
    assert not store.exists(sha(DATA)) and not store.exists(sha(DATA[:1000]))
    (partial,) = (tmp_path / "tmp").iterdir()
    sink.write(DATA[1000:])
    stored = sink.commit()
    assert not partial.exists() and store.path(stored.sha256).read_bytes() == DATA
    sink.abort()  # after commit: nothing to do
    assert store.exists(stored.sha256)


@pytest.mark.parametrize(
    "name",
    [
        "../" * 3 + "etc/passwd",
        "a" * 63,
        "a" * 65,
        "A" * 64,  # upper case is not how the store names files
        "g" * 64,
        "/" + "a" * 63,
        "..%2f" + "a" * 59,
        "a" * 62 + "\n",
        "",
    ],
)
def test_names_other_than_sha256_hex_are_refused(tmp_path: Path, name: str) -> None:
    store = MediaStore(tmp_path)
    assert not is_sha256(name)
    with pytest.raises(InvalidMediaName):
        store.path(name)
    with pytest.raises(InvalidMediaName):
        store.open(name)
    with pytest.raises(InvalidMediaName):
        store.exists(name)


def test_open_of_an_absent_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        MediaStore(tmp_path).open("0" * 64)


def test_sweep_tmp_removes_abandoned_parts_only(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    assert store.sweep_tmp() == 0
    old = store.sink()
    old.write(b"abandoned")
    (old_path,) = (tmp_path / "tmp").iterdir()
    fresh = store.sink()
    os.utime(old_path, (1, 1))  # a crash long ago left it
    assert store.sweep_tmp(older_than_s=3600) == 1
    assert len(list((tmp_path / "tmp").iterdir())) == 1
    fresh.abort()
    old.abort()  # its file is gone already: no error


@pytest.mark.parametrize(
    ("head", "filename", "mime"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "x.jpg", "image/png"),  # the bytes win over the name
        (b"GIF89a\x01\x00", "", "image/gif"),
        (b"GIF87a\x01\x00", "", "image/gif"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "", "image/webp"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", "", "application/octet-stream"),
        (b"#!AMR\n", "", "audio/amr"),
        (b"#!SILK_V3", "", "audio/silk"),
        (b"\x02#!SILK_V3", "", "audio/silk"),
        (b"\x00\x00\x00\x18ftypmp42", "", "video/mp4"),
        (b"\x00\x00\x00\x18ftypisom", "", "video/mp4"),
        (b"\x00\x00\x00\x18ftypheic", "", "image/heic"),
        (b"%PDF-1.7", "合同.pdf", "application/pdf"),
        (b"<html>", "page.html", "text/html"),
        (b"\x00\x01", "", "application/octet-stream"),
        (b"", "noextension", "application/octet-stream"),
    ],
)
def test_sniff_mime(head: bytes, filename: str, mime: str) -> None:
    assert sniff_mime(head, filename) == mime


def test_extensions_of_the_sniffed_types() -> None:
    assert [extension_for(m) for m in ("image/jpeg", "audio/amr", "audio/silk", "video/mp4")] == [
        ".jpg",
        ".amr",
        ".silk",
        ".mp4",
    ]
    assert extension_for("application/pdf") == ".pdf"
    assert extension_for("") == "" and extension_for("application/x-nothing-known") == ""
