"""The media fetcher against an in-test archive source.

The fetcher's SQL is ``monitor.archive.media_rows`` (tested on both backends there); here the
downloads run on SQLite, and the test of two workers at once on both backends.

:class:`DictSource` stands in for WeCom's SDK (``GetMediaData``): it serves files from a dict in
512 KB chunks, the decimal offset of the next chunk as the index, and can be told to fail.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from bot.config import MsgauditConfig
from bot.msgaudit.media import FetchReport, MediaFetcher, Outcome
from monitor.archive import GroupCommitWriter, create_schema, make_engine
from monitor.archive.media_rows import MEDIA, record_media
from monitor.archive.media_store import MediaStore, MediaUsage
from wecom_sdk.errors import archive_error
from wecom_sdk.messages import MediaRef
from wecom_sdk.msgaudit.source import MEDIA_CHUNK_BYTES, ChatDataEntry, MediaChunk

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n"


class DictSource:
    """``ArchiveSource.get_media_data`` over a dict of files (the rest is not needed here)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.calls: list[tuple[str, str]] = []
        #: Errcodes to raise, in order, before serving the file.
        self.failures: dict[str, list[int]] = {}
        #: Every call fails with this code (None: serve).
        self.down: int | None = None
        self.delay_s = 0.0
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0

    def get_chat_data(self, seq: int, limit: int, timeout_s: int) -> list[ChatDataEntry]:
        raise NotImplementedError

    def decrypt_data(self, random_key: str, encrypt_chat_msg: str) -> str:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def get_media_data(self, sdkfileid: str, index: str, timeout_s: int) -> MediaChunk:
        assert timeout_s == 7
        with self._lock:
            self.calls.append((sdkfileid, index))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            if self.down is not None:
                raise archive_error(self.down, "test")
            pending = self.failures.get(sdkfileid)
            if pending:
                raise archive_error(pending.pop(0), "test")
            if sdkfileid not in self.files:
                raise archive_error(10005, "test")
            data = self.files[sdkfileid]
            start = int(index or "0")
            end = min(start + MEDIA_CHUNK_BYTES, len(data))
            return MediaChunk(data[start:end], str(end), end >= len(data))
        finally:
            with self._lock:
                self.in_flight -= 1


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    create_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def store(tmp_path: Path) -> MediaStore:
    return MediaStore(tmp_path / "media")


def blob(size: int, head: bytes = PNG, seed: int = 1) -> bytes:
    body = hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1)
    return (head + body)[:size]


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def fetcher(
    source: DictSource,
    writer: GroupCommitWriter,
    store: MediaStore,
    *,
    max_bytes: int = 10 * 1024 * 1024,
    clock: Clock | None = None,
    **kw: int,
) -> MediaFetcher:
    config = MsgauditConfig(media_max_bytes=max_bytes, timeout_s=7)
    return MediaFetcher(source, writer, store, config, clock or Clock(), **kw)


async def add(writer: GroupCommitWriter, key: str, *refs: MediaRef) -> None:
    await writer.run(lambda c: record_media(c, refs, key, T0))


def media_rows(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(MEDIA).order_by(MEDIA.c.id)).mappings()]


def no_parts_left(store: MediaStore) -> bool:
    tmp = store.root / "tmp"
    return not tmp.exists() or not list(tmp.iterdir())


async def test_a_multi_chunk_file_is_stored_by_content(
    writer: GroupCommitWriter, store: MediaStore, engine: Engine
) -> None:
    data = blob(1_300_000)  # three chunks
    source = DictSource({"f1": data, "f2": data})
    await add(writer, "m1", MediaRef("image", "f1", md5sum=md5(data).upper(), size=len(data)))
    await add(writer, "m2", MediaRef("image", "f2", md5sum=md5(data), filename="x.bin"))
    report = await fetcher(source, writer, store, concurrency=1).fetch_pending()
    assert report[Outcome.STORED] == 2 and report.total == 2 and not report.backing_off
    assert source.calls[:3] == [("f1", ""), ("f1", "524288"), ("f1", "1048576")]
    digest = hashlib.sha256(data).hexdigest()
    assert store.path(digest).read_bytes() == data
    assert store.usage() == MediaUsage(1, len(data))  # both messages, one file
    for row in media_rows(engine):
        assert (row["status"], row["sha256"], row["size"]) == ("stored", digest, len(data))
        assert (row["mime"], row["stored_at"], row["attempts"], row["error"]) == (
            "image/png",  # sniffed: the name says nothing of it
            T0,
            1,
            "",
        )
    assert no_parts_left(store)
    assert (await fetcher(source, writer, store).fetch_pending()).total == 0


async def test_mime_falls_back_to_the_file_name(
    writer: GroupCommitWriter, store: MediaStore, engine: Engine
) -> None:
    pdf, odd = b"%PDF-1.7 ...", b"\x00\x01\x02"
    source = DictSource({"pdf": pdf, "odd": odd})
    await add(writer, "m1", MediaRef("file", "pdf", filename="合同.pdf"), MediaRef("file", "odd"))
    await fetcher(source, writer, store).fetch_pending()
    assert [r["mime"] for r in media_rows(engine)] == [
        "application/pdf",
        "application/octet-stream",
    ]


async def test_md5_mismatch_keeps_nothing_and_is_retried_up_to_the_limit(
    writer: GroupCommitWriter, store: MediaStore, engine: Engine
) -> None:
    data = blob(700_000)
    source = DictSource({"f1": data})
    await add(writer, "m1", MediaRef("video", "f1", md5sum="0" * 32))
    media = fetcher(source, writer, store, max_attempts=2)
    assert (await media.fetch_pending())[Outcome.MD5_MISMATCH] == 1
    (row,) = media_rows(engine)
    assert (row["status"], row["attempts"], row["size"], row["sha256"]) == (
        "md5_mismatch",
        1,
        len(data),
        "",
    )
    assert store.usage() == MediaUsage(0, 0) and no_parts_left(store)
    assert (await media.fetch_pending())[Outcome.MD5_MISMATCH] == 1  # the next pass retries
    assert (await media.fetch_pending()).total == 0  # attempts used up: it stays a mismatch
    (row,) = media_rows(engine)
    assert (row["status"], row["attempts"]) == ("md5_mismatch", 2)
    assert len(source.calls) == 4


async def test_too_large_by_announcement_downloads_nothing(
    writer: GroupCommitWriter, store: MediaStore, engine: Engine
) -> None:
    source = DictSource({"big": blob(2000)})
    await add(writer, "m1", MediaRef("video", "big", size=1001))
    report = await fetcher(source, writer, store, max_bytes=1000).fetch_pending()
    assert report[Outcome.TOO_LARGE] == 1
    assert source.calls == []
    (row,) = media_rows(engine)
    assert (row["status"], row["size"]) == ("too_large", 1001)


async def test_too_large_by_actual_size_stops_at_the_chunk_that_passes(
    writer: GroupCommitWriter, store: MediaStore, engine: Engine
) -> None:
    data = blob(3 * MEDIA_CHUNK_BYTES)
    source = DictSource({"big": data})
    await add(writer, "m1", MediaRef("file", "big", size=100))  # it announced less
    report = await fetcher(source, writer, store, max_bytes=600_000).fetch_pending()
    assert report[Outcome.TOO_LARGE] == 1
    assert len(source.calls) == 2  # 512 KB fit, the second chunk passes 600 000 bytes
    (row,) = media_rows(engine)
    assert (row["status"], row["size"]) == ("too_large", 2 * MEDIA_CHUNK_BYTES)
    assert store.usage() == MediaUsage(0, 0) and no_parts_left(store)


async def test_a_transient_error_is_retried_after_a_back_off(
    writer: GroupCommitWriter, store: MediaStore, engine: Engine
) -> None:
    data = blob(1000)
    source = DictSource({"f1": data})
    source.failures["f1"] = [10001]
    await add(writer, "m1", MediaRef("voice", "f1", md5sum=md5(data)))
    clock = Clock()
    media = fetcher(source, writer, store, clock=clock)
    assert (await media.fetch_pending())[Outcome.RETRY] == 1
    (row,) = media_rows(engine)
    assert (row["status"], row["attempts"]) == ("pending", 0)  # the attempt was given back
    assert "10001" in row["error"]
    assert await media.fetch_pending() == FetchReport(backing_off=True)
    clock.now += timedelta(seconds=31)
    assert (await media.fetch_pending())[Outcome.STORED] == 1
    (row,) = media_rows(engine)
    assert (row["status"], row["attempts"], row["error"]) == ("stored", 1, "")
    assert len(source.calls) == 2


async def test_the_back_off_doubles_while_wecom_is_down(
    writer: GroupCommitWriter, store: MediaStore, engine: Engine
) -> None:
    source = DictSource({f"f{n}": blob(100, seed=n) for n in range(5)})
    source.down = 10003
    for n in range(5):
        await add(writer, f"m{n}", MediaRef("image", f"f{n}"))
    clock = Clock()
    media = fetcher(source, writer, store, clock=clock, concurrency=1, backoff_s=10)
    report = await media.fetch_pending()
    assert report[Outcome.RETRY] == 2  # two failures in a row end the pass
    assert len(source.calls) == 2
    clock.now += timedelta(seconds=11)
    await media.fetch_pending()
    clock.now += timedelta(seconds=11)  # the second back-off is 20 s
    assert (await media.fetch_pending()).backing_off
    clock.now += timedelta(seconds=10)
    source.down = None
    assert (await media.fetch_pending())[Outcome.STORED] == 5
    assert {r["attempts"] for r in media_rows(engine)} == {1}  # outages cost no attempts
    clock.now += timedelta(seconds=1)
    assert not (await media.fetch_pending()).backing_off  # a clean pass ends the back-off


@pytest.mark.parametrize("errcode", [10005, 10010])
async def test_bad_or_expired_files_fail_for_good(
    writer: GroupCommitWriter, store: MediaStore, engine: Engine, errcode: int
) -> None:
    source = DictSource({"f1": b"x"})
    source.failures["f1"] = [errcode]
    await add(writer, "m1", MediaRef("file", "f1"))
    media = fetcher(source, writer, store)
    assert (await media.fetch_pending())[Outcome.FAILED] == 1
    (row,) = media_rows(engine)
    assert row["status"] == "failed" and str(errcode) in row["error"]
    assert (await media.fetch_pending()).total == 0
    assert len(source.calls) == 1


async def test_other_errors_count_attempts_then_fail(
    writer: GroupCommitWriter, store: MediaStore, engine: Engine
) -> None:
    source = DictSource({"f1": b"x"})
    source.failures["f1"] = [10000, 10000]
    await add(writer, "m1", MediaRef("file", "f1"))
    media = fetcher(source, writer, store, max_attempts=2)
    assert (await media.fetch_pending())[Outcome.ERROR] == 1
    assert media_rows(engine)[0]["attempts"] == 1
    assert (await media.fetch_pending())[Outcome.FAILED] == 1
    (row,) = media_rows(engine)
    assert (row["status"], row["attempts"]) == ("failed", 2)


async def test_at_most_two_downloads_at_once(
    writer: GroupCommitWriter, store: MediaStore, engine: Engine
) -> None:
    source = DictSource({f"f{n}": blob(1000, seed=n) for n in range(6)})
    source.delay_s = 0.02
    for n in range(6):
        await add(writer, f"m{n}", MediaRef("image", f"f{n}"))
    report = await fetcher(source, writer, store).fetch_pending()
    assert report[Outcome.STORED] == 6
    assert source.max_in_flight == 2
    assert store.usage().files == 6


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_two_workers_at_once_store_each_file_once(
    request: pytest.FixtureRequest, store: MediaStore, backend: str
) -> None:
    """Two fetchers (two workers, each with its writer) over the same rows: whatever both fetch
    lands under the same name, and every row ends stored."""
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_schema_url")
    engine = make_engine(url)
    create_schema(engine)
    try:
        async with GroupCommitWriter(engine) as writer, GroupCommitWriter(engine) as other:
            await _two_workers(writer, other, store, engine)
    finally:
        engine.dispose()


async def _two_workers(
    writer: GroupCommitWriter, other: GroupCommitWriter, store: MediaStore, engine: Engine
) -> None:
    files = {f"f{n}": blob(600_000, seed=n) for n in range(4)}
    source = DictSource(files)
    source.delay_s = 0.01
    for n in range(4):
        await add(writer, f"m{n}", MediaRef("file", f"f{n}", md5sum=md5(files[f"f{n}"])))
    reports = await asyncio.gather(
        fetcher(source, writer, store).fetch_pending(),
        fetcher(source, other, store).fetch_pending(),
    )
    assert sum(r[Outcome.STORED] for r in reports) >= 4
    assert {r["status"] for r in media_rows(engine)} == {"stored"}
    assert store.usage() == MediaUsage(4, 4 * 600_000)
    assert no_parts_left(store)
