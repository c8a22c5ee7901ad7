"""The archive: idempotent, group-committed stores, on the SQLite file and the real PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Connection, Engine, event

from monitor.archive import (
    Archive,
    ArchivedHit,
    GroupCommitWriter,
    InboundRecord,
    MessageRecord,
    StorageError,
    StoreResult,
    create_schema,
    make_engine,
)
from monitor.archive import store as archive_module
from tests.support.storage import Gate, closing, queued

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
def archive(writer: GroupCommitWriter) -> Archive:
    return Archive(writer, clock=lambda: FIXED_NOW)


def count(statements: list[str], verb: str) -> int:
    """Statements starting with ``verb``, the hash chain's block append and the search index's
    rows left out."""
    return sum(1 for s in store_statements(statements) if s.lstrip().upper().startswith(verb))


def store_statements(statements: list[str]) -> list[str]:
    return [s for s in statements if "chain_" not in s and "message_search" not in s]


def block_append(statements: list[str]) -> list[str]:
    """The hash chain's statements, as their first words: the batch's one block append."""
    return [" ".join(s.split()[:4]) for s in statements if "chain_" in s]


def one_block(engine: Engine) -> list[str]:
    """Lock the chain (PostgreSQL), read its last block, add one: the chain's whole cost per batch."""
    lock = ["SELECT chain FROM chain_lock"] if engine.dialect.name == "postgresql" else []
    return [*lock, "SELECT seq, block_hash FROM", "INSERT INTO chain_block (chain,"]


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
    await queued(writer, 3)
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


def test_row_covers_every_column() -> None:
    table = MessageRecord.__table__
    assert set(archive_module._COLUMNS) == {c.name for c in table.c} - {"id"}
    row = archive_module._row(record("k", content="c", raw="r"), FIXED_NOW)
    assert dict(zip(archive_module._COLUMNS, row, strict=True)) == {
        "dedupe_key": "k",
        "channel": "app",
        "msg_type": "text",
        "event": None,
        "from_user": "zhangsan",
        "to_user": "wx5823bf96d3bd56c7",
        "agent_id": "1000002",
        "create_time": 1_714_825_815,
        "content": "c",
        "raw": "r",
        "received_at": FIXED_NOW,
        "rules_version": None,
        "conversation_id": None,
        "direction": None,
    }


async def test_one_insert_statement_per_batch(
    writer: GroupCommitWriter, archive: Archive, commits: list[int], statements: list[str]
) -> None:
    gate = Gate()
    held = await gate.hold(writer)
    tasks = [asyncio.create_task(archive.store_inbound(record(f"m{i}"))) for i in range(100)]
    await queued(writer, 101)
    statements.clear()
    gate.release.set()
    await held
    results = await asyncio.gather(*tasks)
    assert all(r.inserted for r in results)
    assert len({r.message_id for r in results}) == 100
    assert count(statements, "INSERT") == 1  # one multi-row INSERT, one round trip
    assert sum("INTO message_search" in s for s in statements) == 1  # the batch's index rows
    assert count(statements, "SELECT") == 0  # nothing was archived before: no id lookup
    chain = one_block(writer.engine)
    assert block_append(statements) == chain  # at the end of the batch, as it commits
    assert statements[-len(chain) :] == [s for s in statements if "chain_" in s]
    assert commits == [1, 100]
    assert await archive.count() == 100
    for i in (0, 57, 99):  # each caller got its own row's id
        stored = await archive.get(f"m{i}")
        assert stored is not None
        assert stored.id == results[i].message_id


@pytest.mark.parametrize("insert", ["driver", "core"])
async def test_duplicates_and_archived_keys_in_one_batch(
    writer: GroupCommitWriter,
    archive: Archive,
    commits: list[int],
    statements: list[str],
    insert: str,
) -> None:
    if insert == "core":  # the portable Core statement, used for drivers other than ours
        archive._store._insert = archive_module._CoreInsert(writer.engine.dialect)
    old = await archive.store_inbound(record("old", content="first copy"))
    commits.clear()
    gate = Gate()
    held = await gate.hold(writer)
    keys = ["a", "old", "a", "b", "old", "a", "c"]
    tasks = [
        asyncio.create_task(archive.store_inbound(record(key, content=f"copy {i}")))
        for i, key in enumerate(keys)
    ]
    await queued(writer, 8)
    statements.clear()
    gate.release.set()
    await held
    results = dict(enumerate(await asyncio.gather(*tasks)))
    a, b, c = results[0].message_id, results[3].message_id, results[6].message_id
    assert len({a, b, c, old.message_id}) == 4
    assert results == {
        0: StoreResult(a, inserted=True),
        1: StoreResult(old.message_id, inserted=False),
        2: StoreResult(a, inserted=False),
        3: StoreResult(b, inserted=True),
        4: StoreResult(old.message_id, inserted=False),
        5: StoreResult(a, inserted=False),
        6: StoreResult(c, inserted=True),
    }
    assert count(statements, "INSERT") == 1
    assert count(statements, "SELECT") == 1  # one lookup for the already archived key
    assert block_append(statements) == one_block(writer.engine)
    assert commits == [1, 7]  # one transaction, no unit failed
    assert await archive.count() == 4
    stored_a, stored_old = await archive.get("a"), await archive.get("old")
    assert stored_a is not None
    assert stored_a.content == "copy 0"  # the first copy in the batch wins
    assert stored_old is not None
    assert stored_old.content == "first copy"


async def test_failing_store_is_isolated_from_its_batch(
    writer: GroupCommitWriter, archive: Archive, commits: list[int]
) -> None:
    gate = Gate()
    held = await gate.hold(writer)
    good = [asyncio.create_task(archive.store_inbound(record(f"g{i}"))) for i in range(5)]
    broken = InboundRecord(  # NOT NULL violation in the database, on both backends
        dedupe_key="broken",
        channel="app",
        msg_type="text",
        from_user="u",
        to_user="corp",
        create_time=1,
        raw=None,  # type: ignore[arg-type]
    )
    bad = asyncio.create_task(archive.store_inbound(broken))
    twin = asyncio.create_task(archive.store_inbound(record("g1")))
    await queued(writer, 8)
    gate.release.set()
    await held
    results = await asyncio.gather(*good)
    assert all(r.inserted for r in results)
    with pytest.raises(StorageError):
        await bad
    assert await twin == StoreResult(results[1].message_id, inserted=False)
    assert await archive.get("broken") is None
    assert await archive.count() == 5
    assert commits == [1] + [1] * 6  # the batch failed as a whole, then each store alone


async def test_batches_larger_than_one_insert_page(engine: Engine) -> None:
    sizes: list[int] = []
    inserts: list[str] = []
    n = archive_module._PAGE_ROWS * 2 + 50
    async with GroupCommitWriter(
        engine, max_batch=n, on_commit=lambda size, _s: sizes.append(size)
    ) as writer:
        archive = Archive(writer, clock=lambda: FIXED_NOW)
        gate = Gate()
        held = await gate.hold(writer)
        tasks = [asyncio.create_task(archive.store_inbound(record(f"p{i}"))) for i in range(n)]
        await queued(writer, n + 1)

        def on_execute(*args: object) -> None:
            if str(args[2]).startswith("INSERT INTO message "):
                inserts.append(str(args[2]))

        event.listen(engine, "before_cursor_execute", on_execute)
        gate.release.set()
        await held
        results = await asyncio.gather(*tasks)
        event.remove(engine, "before_cursor_execute", on_execute)
    assert sizes == [1, n]
    assert len(inserts) == 3  # pages of 1000, 1000 and 50 rows (SQLite's parameter limit)
    assert all(r.inserted for r in results)
    assert len({r.message_id for r in results}) == n
    assert await archive.count() == n


async def test_close_flushes_queued_stores(writer: GroupCommitWriter, archive: Archive) -> None:
    gate = Gate()
    held = await gate.hold(writer)
    tasks = [asyncio.create_task(archive.store_inbound(record(f"q{i}"))) for i in range(30)]
    await asyncio.sleep(0)  # every task has queued its store
    close = await closing(writer)
    assert not close.done()  # it waits for the held batch
    gate.release.set()
    await close
    await held
    assert all(r.inserted for r in await asyncio.gather(*tasks))
    assert await archive.count() == 30


async def test_hits_stored_with_their_message_once(archive: Archive) -> None:
    hits = (
        ArchivedHit(word="维权", group="客户维权风险", severity=3, start=2, end=5),
        ArchivedHit(word="12315", group="客户维权风险", severity=3, start=7, end=12),
    )
    rec = dataclasses.replace(
        record("hit-1", content="我要维 权，打12315"), hits=hits, rules_version="abc123"
    )
    plain = record("hit-2", content="谢谢")
    first, other, retry = await asyncio.gather(
        archive.store_inbound(rec), archive.store_inbound(plain), archive.store_inbound(rec)
    )
    assert first.inserted and not retry.inserted
    stored = await archive.hits_of(first.message_id)
    assert [(h.word, h.span_start, h.span_end, h.rules_version) for h in stored] == [
        ("维权", 2, 5, "abc123"),
        ("12315", 7, 12, "abc123"),
    ]
    assert "我要维 权，打12315"[stored[0].span_start : stored[0].span_end] == "维 权"
    assert await archive.hits_of(other.message_id) == []
    message = await archive.get("hit-1")
    assert message is not None and message.rules_version == "abc123"
