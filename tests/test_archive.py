"""The archive: idempotent, group-committed stores, on the SQLite file and the real PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Connection, Engine

from monitor import (
    Archive,
    GroupCommitWriter,
    InboundRecord,
    StorageError,
    StoreResult,
    create_schema,
    make_engine,
)

FIXED_NOW = datetime(2024, 5, 4, 12, 30, 15, 123456, tzinfo=UTC)


def record(key: str, *, content: str = "你好", raw: str | None = None) -> InboundRecord:
    return InboundRecord(
        dedupe_key=key,
        channel="app",
        msg_type="text",
        from_user="zhangsan",
        to_user="wx5823bf96d3bd56c7",
        agent_id="1000002",
        create_time=1_714_825_815,
        content=content,
        raw=raw if raw is not None else f"<xml><Content><![CDATA[{content}]]></Content></xml>",
    )


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    create_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def commits() -> list[int]:
    return []


@pytest.fixture
async def writer(engine: Engine, commits: list[int]) -> AsyncIterator[GroupCommitWriter]:
    async with GroupCommitWriter(engine, on_commit=lambda n, _s: commits.append(n)) as w:
        yield w


@pytest.fixture
def archive(writer: GroupCommitWriter) -> Archive:
    return Archive(writer, clock=lambda: FIXED_NOW)


async def test_store_and_read_back_chinese_and_emoji(archive: Archive) -> None:
    text = "客户说：我要维权😡，打12315！🙏 𠀋"
    raw = f"<xml><MsgId>1234567890123456</MsgId><Content><![CDATA[{text}]]></Content></xml>"
    result = await archive.store_inbound(record("1234567890123456", content=text, raw=raw))
    assert result.inserted
    stored = await archive.get("1234567890123456")
    assert stored is not None
    assert stored.id == result.message_id
    assert stored.content == text
    assert stored.raw == raw
    assert (stored.channel, stored.msg_type, stored.event) == ("app", "text", None)
    assert (stored.from_user, stored.to_user, stored.agent_id) == (
        "zhangsan",
        "wx5823bf96d3bd56c7",
        "1000002",
    )
    assert stored.create_time == 1_714_825_815
    assert stored.received_at == FIXED_NOW
    assert stored.received_at.tzinfo is not None
    assert stored.received_at.utcoffset() == timedelta(0)


async def test_received_at_is_normalised_to_utc(writer: GroupCommitWriter) -> None:
    beijing = timezone(timedelta(hours=8))
    archive = Archive(writer, clock=lambda: datetime(2024, 5, 4, 20, 30, tzinfo=beijing))
    await archive.store_inbound(record("tz"))
    stored = await archive.get("tz")
    assert stored is not None
    assert stored.received_at == datetime(2024, 5, 4, 12, 30, tzinfo=UTC)
    assert stored.received_at.tzinfo == UTC


async def test_store_is_idempotent(archive: Archive) -> None:
    first = await archive.store_inbound(record("retry-me"))
    second = await archive.store_inbound(record("retry-me", content="a retry"))
    assert first == StoreResult(message_id=first.message_id, inserted=True)
    assert second == StoreResult(message_id=first.message_id, inserted=False)
    assert await archive.count() == 1
    stored = await archive.get("retry-me")
    assert stored is not None
    assert stored.content == "你好"  # the first copy wins


async def test_duplicates_inside_one_group_commit_batch(
    writer: GroupCommitWriter, archive: Archive, commits: list[int]
) -> None:
    release = threading.Event()
    entered = threading.Event()

    def gate(conn: Connection) -> None:
        entered.set()
        release.wait(10)

    held = asyncio.create_task(writer.run(gate))
    assert await asyncio.to_thread(entered.wait, 5)
    both = asyncio.gather(
        archive.store_inbound(record("twin")), archive.store_inbound(record("twin"))
    )
    await asyncio.sleep(0.01)
    release.set()
    await held
    a, b = await both
    assert a.message_id == b.message_id
    assert sorted([a.inserted, b.inserted]) == [False, True]
    assert commits == [1, 2]  # both copies shared one transaction, no unit failed
    assert await archive.count() == 1


async def test_concurrent_distinct_stores(archive: Archive, commits: list[int]) -> None:
    results = await asyncio.gather(*(archive.store_inbound(record(f"m{i}")) for i in range(100)))
    assert all(r.inserted for r in results)
    assert len({r.message_id for r in results}) == 100
    assert await archive.count() == 100
    assert len(commits) < 100


async def test_get_missing_and_count_empty(archive: Archive) -> None:
    assert await archive.get("nope") is None
    assert await archive.count() == 0


async def test_event_without_content(archive: Archive) -> None:
    event = InboundRecord(
        dedupe_key="a" * 64,  # events are keyed by a SHA-256 hex digest of their XML
        channel="app",
        msg_type="event",
        event="enter_agent",
        from_user="lisi",
        to_user="corp",
        create_time=1,
        raw="<xml><Event><![CDATA[enter_agent]]></Event></xml>",
    )
    assert (await archive.store_inbound(event)).inserted
    stored = await archive.get("a" * 64)
    assert stored is not None
    assert (stored.event, stored.content, stored.agent_id) == ("enter_agent", None, None)


@pytest.mark.parametrize("key", ["", "k" * 129])
async def test_dedupe_key_length_is_checked(archive: Archive, key: str) -> None:
    with pytest.raises(ValueError, match="dedupe_key"):
        await archive.store_inbound(record(key))
    await archive.store_inbound(record("k" * 128))  # the limit itself is fine


async def test_ping(archive: Archive) -> None:
    await archive.ping()


async def test_store_after_close_is_a_storage_error(
    writer: GroupCommitWriter, archive: Archive
) -> None:
    await writer.close()
    with pytest.raises(StorageError):
        await archive.store_inbound(record("late"))
