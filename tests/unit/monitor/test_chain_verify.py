"""The hash chains end to end on the SQLite file and the real PostgreSQL: the writes that append
blocks (archive stores, flags, audit rows), and the verifier naming what was tampered with.

Each test builds the same small archive through the real write paths (:func:`chained`), then
changes the database behind the bot's back with plain SQL, as someone with database access would.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from monitor.archive import (
    Archive,
    ArchivedHit,
    GroupCommitWriter,
    InboundRecord,
)
from monitor.archive.audit import AuditEvent, record_audit_event
from monitor.archive.chain import Chain, Entry, block_hash, decode_entries, encode_entries
from monitor.archive.chain_scan import scan_messages
from monitor.archive.chain_store import Head, read_heads
from monitor.archive.flags import NewFlag, record_flags
from monitor.archive.kf_models import MessageFlag
from monitor.archive.models import HitRecord, MessageRecord
from monitor.archive.verify import ChainReport, ProblemKind, verify_database
from tests.support.storage import Gate, queued

T0 = datetime(2026, 4, 1, 9, 0, 0, 250000, tzinfo=UTC)


def record(key: str, content: str = "你好😀", hits: tuple[ArchivedHit, ...] = ()) -> InboundRecord:
    return InboundRecord(
        dedupe_key=key,
        channel="kf",
        msg_type="text",
        from_user="wmCustomer",
        to_user="wkKF1",
        create_time=1_775_034_000,
        content=content,
        raw=f'{{"text": {{"content": "{content}"}}}}',
        rules_version="r1" if hits else None,
        conversation_id="kf:wkKF1:wmCustomer",
        direction="customer",
        hits=hits,
    )


HITS = (
    ArchivedHit("投诉", "customer_risk", 3, 0, 2, via="homophone"),
    ArchivedHit("12315", "customer_risk", 4, 3, 8),
)


def audit(action: str, *, at: datetime = T0) -> AuditEvent:
    return AuditEvent(
        at=at, actor="li.na", source="web", action=action, target="al-1", detail={"n": action}
    )


@dataclass(frozen=True)
class Built:
    """The archive :func:`chained` made: ids by name, and what the blocks hold."""

    engine: Engine
    ids: dict[str, int]

    def sql(self, *statements: str, **params: Any) -> None:
        with self.engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement.format(**self.ids)), params)

    def reports(self) -> dict[Chain, ChainReport]:
        return {report.chain: report for report in verify_database(self.engine)}

    def lines(self) -> list[str]:
        return [
            "intact" if r.problem is None else r.problem.describe() for r in self.reports().values()
        ]


@pytest.fixture
def engine(schema_engine: Engine) -> Engine:
    return schema_engine


@pytest.fixture
async def chained(engine: Engine) -> Built:
    """archive blocks: 1 = m1 (two hits), 2 = m2, 3 = m3, m4, m5 (one batch), 4 = flag f1 on m2;
    audit blocks: 1 = a1, 2 = a2 and a3 (one transaction)."""
    times = iter(T0 + timedelta(seconds=i) for i in range(100))
    async with GroupCommitWriter(engine) as writer:
        archive = Archive(writer, clock=lambda: next(times))
        ids = {"m1": (await archive.store_inbound(record("m1", "投诉12315", HITS))).message_id}
        ids["m2"] = (await archive.store_inbound(record("m2", "在吗"))).message_id
        gate = Gate()
        held = await gate.hold(writer)
        batch = [asyncio.create_task(archive.store_inbound(record(f"m{i}"))) for i in (3, 4, 5)]
        await queued(writer, 4)
        gate.release.set()
        await held
        for key, result in zip(("m3", "m4", "m5"), await asyncio.gather(*batch), strict=True):
            ids[key] = result.message_id
        flag = NewFlag("m2", MessageFlag.RECALLED, "recall_msg", "kf:e1", T0)
        assert await writer.run(lambda conn: record_flags(conn, [flag])) == 1
        ids["a1"] = await writer.run(lambda conn: record_audit_event(conn, audit("claim")))

        def two(conn: Connection) -> tuple[int, int]:
            return (
                record_audit_event(conn, audit("note")),
                record_audit_event(conn, audit("resolve", at=T0 + timedelta(minutes=1))),
            )

        ids["a2"], ids["a3"] = await writer.run(two)
    with engine.connect() as conn:
        ids["f1"] = conn.execute(text("SELECT id FROM message_flag")).scalar_one()
    return Built(engine, ids)


# -- intact ---------------------------------------------------------------------------------------


def test_every_write_path_appends_a_block_and_the_chains_verify(chained: Built) -> None:
    reports = chained.reports()
    archive, audit_chain = reports[Chain.ARCHIVE], reports[Chain.AUDIT]
    assert (archive.problem, archive.blocks, dict(archive.rows)) == (
        None,
        4,
        {"message": 5, "message_flag": 1, "msgaudit_quarantine": 0},
    )
    assert (audit_chain.problem, audit_chain.blocks, dict(audit_chain.rows)) == (
        None,
        2,
        {"audit_event": 3},
    )
    with chained.engine.connect() as conn:
        blocks = conn.execute(
            text("SELECT chain, seq, entries FROM chain_block ORDER BY chain, seq")
        ).all()
        heads = read_heads(conn)
    ids = chained.ids
    assert [(c, s, [e.split(":")[0] for e in entries.split()]) for c, s, entries in blocks] == [
        ("archive", 1, [f"m{ids['m1']}"]),
        ("archive", 2, [f"m{ids['m2']}"]),
        ("archive", 3, [f"m{ids['m3']}", f"m{ids['m4']}", f"m{ids['m5']}"]),
        ("archive", 4, [f"f{ids['f1']}"]),
        ("audit", 1, [f"a{ids['a1']}"]),
        ("audit", 2, [f"a{ids['a2']}", f"a{ids['a3']}"]),
    ]
    assert (heads[Chain.ARCHIVE].seq, heads[Chain.AUDIT].seq) == (4, 2)
    assert heads[Chain.ARCHIVE].block_hash == archive.head.block_hash != "0" * 64


async def test_a_wecom_retry_or_a_flag_set_again_adds_no_block(
    chained: Built, engine: Engine
) -> None:
    before = read_heads_now(engine)
    async with GroupCommitWriter(engine) as writer:
        retry = await Archive(writer).store_inbound(record("m2", "在吗"))
        flag = NewFlag("m2", MessageFlag.RECALLED, "recall_msg", "kf:e2", T0)
        again = await writer.run(lambda conn: record_flags(conn, [flag]))
    assert (retry.inserted, again) == (False, 0)
    assert read_heads_now(engine) == before
    assert chained.lines() == ["intact", "intact"]


def read_heads_now(engine: Engine) -> dict[Chain, Head]:
    with engine.connect() as conn:
        return read_heads(conn)


# -- rows changed behind the bot's back -----------------------------------------------------------

ROW_CASES = {
    "modified message": (
        ["UPDATE message SET content = '我没投诉' WHERE id = {m4}"],
        "archive chain broken at block 3: message {m4} was modified",
    ),
    "modified receive time": (
        ["UPDATE message SET received_at = received_at + interval '1 second' WHERE id = {m2}"],
        "archive chain broken at block 2: message {m2} was modified",
    ),
    "changed hit": (
        ["UPDATE hit SET severity = 1 WHERE message_id = {m1} AND word = '投诉'"],
        "archive chain broken at block 1: message {m1} was modified",
    ),
    "deleted hit": (
        ["DELETE FROM hit WHERE message_id = {m1} AND word = '12315'"],
        "archive chain broken at block 1: message {m1} was modified",
    ),
    "added hit": (
        [
            "INSERT INTO hit (message_id, word, rule_group, severity, span_start, span_end, "
            "rules_version) VALUES ({m2}, '在', 'g', 1, 0, 1, 'r1')"
        ],
        "archive chain broken at block 2: message {m2} was modified",
    ),
    "deleted message": (
        ["DELETE FROM message WHERE id = {m4}"],
        "archive chain broken at block 3: message {m4} was deleted",
    ),
    "inserted message": (
        [
            "INSERT INTO message (id, dedupe_key, channel, msg_type, from_user, to_user, "
            "create_time, raw, received_at) SELECT 100, 'forged', channel, msg_type, from_user, "
            "to_user, create_time, raw, received_at FROM message WHERE id = {m2}"
        ],
        "archive chain broken after block 4: message 100 is in no block (inserted, or later "
        "blocks were deleted)",
    ),
    "inserted message before the first": (
        [
            "INSERT INTO message (id, dedupe_key, channel, msg_type, from_user, to_user, "
            "create_time, raw, received_at) SELECT 0, 'forged', channel, msg_type, from_user, "
            "to_user, create_time, raw, received_at FROM message WHERE id = {m2}"
        ],
        "archive chain broken before block 1: message 0 was inserted (no block holds it)",
    ),
    "ids swapped in one block": (
        [
            "UPDATE message SET id = -1 WHERE id = {m3}",
            "UPDATE message SET id = {m3} WHERE id = {m5}",
            "UPDATE message SET id = {m5} WHERE id = -1",
        ],
        "archive chain broken at block 3: message {m3} holds the contents of message {m5} "
        "(rows reordered)",
    ),
    "contents swapped across blocks": (
        [
            "UPDATE message SET content = 'x' WHERE id = {m2}",
            "UPDATE message SET content = '在吗' WHERE id = {m3}",
            "UPDATE message SET content = '你好😀' WHERE id = {m2}",
        ],
        "archive chain broken at block 2: message {m2} was modified",
    ),
    "hit's spelling changed": (
        ["UPDATE hit SET via = NULL WHERE message_id = {m1}"],
        "archive chain broken at block 1: message {m1} was modified",
    ),
    "split parts made up": (
        ["UPDATE hit SET parts = '[]' WHERE message_id = {m1}"],
        "archive chain broken at block 1: message {m1} was modified",
    ),
    "modified flag": (
        ["UPDATE message_flag SET detail = 'nothing' WHERE id = {f1}"],
        "archive chain broken at block 4: message_flag {f1} was modified",
    ),
    "deleted flag": (
        ["DELETE FROM message_flag WHERE id = {f1}"],
        "archive chain broken at block 4: message_flag {f1} was deleted",
    ),
    "inserted flag": (
        [
            "INSERT INTO message_flag (dedupe_key, flag, detail, source_key, created_at) "
            "SELECT 'm4', flag, detail, source_key, created_at FROM message_flag"
        ],
        "archive chain broken after block 4: message_flag {f1_next} is in no block (inserted, "
        "or later blocks were deleted)",
    ),
    "first bad block wins": (
        [
            "UPDATE message SET content = 'x' WHERE id = {m4}",
            "UPDATE message SET direction = 'staff' WHERE id = {m1}",
        ],
        "archive chain broken at block 1: message {m1} was modified",
    ),
}


@pytest.mark.parametrize("case", list(ROW_CASES))
def test_a_tampered_archive_row_is_named(chained: Built, case: str) -> None:
    statements, expected = ROW_CASES[case]
    if chained.engine.dialect.name == "sqlite":  # SQLite keeps times as text: shift it there
        statements = [
            s.replace("received_at + interval '1 second'", "'2026-04-01 09:00:01.250001'")
            for s in statements
        ]
    chained.sql(*statements)
    ids = {**chained.ids, "f1_next": chained.ids["f1"] + 1}
    assert chained.lines() == [expected.format(**ids), "intact"]


AUDIT_CASES = {
    "modified": (
        ["UPDATE audit_event SET actor = 'someone' WHERE id = {a1}"],
        "audit chain broken at block 1: audit_event {a1} was modified",
    ),
    "deleted": (
        ["DELETE FROM audit_event WHERE id = {a3}"],
        "audit chain broken at block 2: audit_event {a3} was deleted",
    ),
    "inserted": (
        [
            "INSERT INTO audit_event (at, actor, source, action, target, detail, address) "
            "SELECT at, actor, source, 'login', target, detail, address FROM audit_event "
            "WHERE id = {a1}"
        ],
        "audit chain broken after block 2: audit_event {a3_next} is in no block (inserted, or "
        "later blocks were deleted)",
    ),
    "reordered": (
        [
            "UPDATE audit_event SET id = -1 WHERE id = {a2}",
            "UPDATE audit_event SET id = {a2} WHERE id = {a3}",
            "UPDATE audit_event SET id = {a3} WHERE id = -1",
        ],
        "audit chain broken at block 2: audit_event {a2} holds the contents of audit_event {a3} "
        "(rows reordered)",
    ),
}


@pytest.mark.parametrize("case", list(AUDIT_CASES))
def test_a_tampered_audit_row_is_named(chained: Built, case: str) -> None:
    statements, expected = AUDIT_CASES[case]
    chained.sql(*statements)
    ids = {**chained.ids, "a3_next": chained.ids["a3"] + 1}
    assert chained.lines() == ["intact", expected.format(**ids)]


def test_a_hit_of_no_message_is_named(chained: Built, engine: Engine) -> None:
    insert = (
        "INSERT INTO hit (id, message_id, word, rule_group, severity, span_start, span_end, "
        "rules_version) VALUES (90, 999, 'x', 'g', 1, 0, 1, 'r1')"
    )
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()  # foreign keys off for this connection only
        try:
            raw.execute("PRAGMA foreign_keys=OFF")
            raw.execute(insert)
            raw.commit()
        finally:
            raw.close()
    else:
        chained.sql("ALTER TABLE hit DROP CONSTRAINT hit_message_id_fkey", insert)
    assert chained.lines() == [
        "archive chain broken after block 4: hit 90 is in no block (inserted, or later blocks "
        "were deleted)",
        "intact",
    ]


# -- blocks changed -------------------------------------------------------------------------------


def test_blocks_modified_deleted_or_relinked_are_named(chained: Built) -> None:
    def broken(*statements: str) -> tuple[ProblemKind | None, int | None]:
        with chained.engine.connect() as conn:
            saved = conn.execute(text("SELECT * FROM chain_block")).all()
        chained.sql(*statements)
        report = chained.reports()[Chain.ARCHIVE]
        chained.sql("DELETE FROM chain_block")  # put everything back
        with chained.engine.begin() as conn:
            for row in saved:
                conn.execute(
                    text("INSERT INTO chain_block VALUES (:c, :s, :p, :h, :t, :e)"),
                    dict(zip("csphte", row, strict=True)),
                )
        assert chained.lines() == ["intact", "intact"]
        problem = report.problem
        return (None, None) if problem is None else (problem.kind, problem.block)

    where = "WHERE chain = 'archive' AND seq = {}"
    assert broken(f"DELETE FROM chain_block {where.format(2)}") == (ProblemKind.BLOCK_MISSING, 2)
    assert broken(f"DELETE FROM chain_block {where.format(1)}") == (ProblemKind.BLOCK_MISSING, 1)
    assert broken(
        f"UPDATE chain_block SET entries = replace(entries, ' ', '  ') {where.format(3)}"
    ) == (ProblemKind.BLOCK_MODIFIED, 3)
    assert broken(f"UPDATE chain_block SET entries = 'garbage' {where.format(3)}") == (
        ProblemKind.BLOCK_MODIFIED,
        3,
    )
    assert broken(  # a block's row dropped from it, the block no longer matching its hash
        f"UPDATE chain_block SET entries = substr(entries, 1, 67) {where.format(3)}"
    ) == (ProblemKind.BLOCK_MODIFIED, 3)
    assert broken(f"UPDATE chain_block SET block_hash = prev_hash {where.format(1)}") == (
        ProblemKind.BLOCK_MODIFIED,
        1,
    )
    assert broken(f"UPDATE chain_block SET prev_hash = block_hash {where.format(2)}") == (
        ProblemKind.LINK_BROKEN,
        2,
    )
    assert broken(f"UPDATE chain_block SET seq = 5 {where.format(4)}") == (
        ProblemKind.BLOCK_MISSING,
        4,
    )


def test_deleted_last_blocks_leave_their_rows_in_no_block(chained: Built) -> None:
    chained.sql("DELETE FROM chain_block WHERE chain = 'archive' AND seq = 4")
    chained.sql("DELETE FROM chain_block WHERE chain = 'audit' AND seq = 2")
    assert chained.lines() == [
        "archive chain broken after block 3: message_flag {f1} is in no block (inserted, or "
        "later blocks were deleted)".format(**chained.ids),
        "audit chain broken after block 1: audit_event {a2} is in no block (inserted, or "
        "later blocks were deleted)".format(**chained.ids),
    ]


def test_a_block_rewritten_with_a_fitting_hash_breaks_the_next_link(chained: Built) -> None:
    chained.sql("UPDATE message SET content = 'rewritten' WHERE id = {m2}")
    with chained.engine.begin() as conn:  # the forger recomputes block 2 for the new row
        digest = dict(scan_messages(conn, MessageRecord.__table__, HitRecord.__table__))
        seq, prev, created_at, entries = conn.execute(
            text(
                "SELECT seq, prev_hash, created_at, entries FROM chain_block "
                "WHERE chain = 'archive' AND seq = 2"
            )
        ).one()
        entries = encode_entries(
            [Entry(e.table, e.row_id, digest[e.row_id]) for e in decode_entries(entries)]
        )
        at = created_at if isinstance(created_at, datetime) else datetime.fromisoformat(created_at)
        conn.execute(
            text(
                "UPDATE chain_block SET entries = :e, block_hash = :h "
                "WHERE chain = 'archive' AND seq = 2"
            ),
            {"e": entries, "h": block_hash("archive", seq, prev, at, entries)},
        )
    assert chained.lines() == [
        "archive chain broken at block 3: its previous-block hash is not the hash of block 2",
        "intact",
    ]


# -- transactions ---------------------------------------------------------------------------------


async def test_a_rolled_back_transaction_or_savepoint_leaves_no_trace_in_the_chain(
    chained: Built, engine: Engine
) -> None:
    async with GroupCommitWriter(engine) as writer:

        def fails(conn: Connection) -> None:
            record_audit_event(conn, audit("lost"))
            raise RuntimeError("the action failed")

        with pytest.raises(RuntimeError):
            await writer.run(fails)

        def savepoint(conn: Connection) -> int:
            nested = conn.begin_nested()
            record_audit_event(conn, audit("undone"))
            nested.rollback()
            return record_audit_event(conn, audit("kept"))

        kept = await writer.run(savepoint)
    with engine.connect() as conn:
        entries = conn.execute(
            text("SELECT entries FROM chain_block WHERE chain = 'audit' AND seq = 3")
        ).scalar_one()
        actions = conn.execute(text("SELECT action FROM audit_event ORDER BY id")).scalars().all()
    assert [e.split(":")[0] for e in entries.split()] == [f"a{kept}"]
    assert actions == ["claim", "note", "resolve", "kept"]
    assert chained.lines() == ["intact", "intact"]


def test_an_audit_row_written_outside_the_writer_gets_its_block(
    chained: Built, engine: Engine
) -> None:
    with engine.begin() as conn:  # e.g. a CLI command on its own connection
        record_audit_event(conn, audit("user_add"))
    assert chained.reports()[Chain.AUDIT].blocks == 3
    assert chained.lines() == ["intact", "intact"]


def test_a_failing_block_append_fails_the_commit_and_keeps_nothing(
    chained: Built, engine: Engine
) -> None:
    chained.sql("ALTER TABLE chain_block RENAME TO blocks_away")  # appending cannot succeed
    try:
        with pytest.raises(Exception, match="chain_block"), engine.begin() as conn:
            record_audit_event(conn, audit("never"))
    finally:
        chained.sql("ALTER TABLE blocks_away RENAME TO chain_block")
    with engine.connect() as conn:
        actions = conn.execute(text("SELECT action FROM audit_event")).scalars().all()
    assert "never" not in actions  # the commit failed, not the block was skipped
    assert chained.lines() == ["intact", "intact"]


async def test_verify_sees_one_snapshot_while_the_bot_keeps_writing(
    chained: Built, engine: Engine
) -> None:
    stop = threading.Event()
    async with GroupCommitWriter(engine) as writer:
        archive = Archive(writer)

        async def keep_writing() -> int:
            n = 0
            while not stop.is_set():
                await archive.store_inbound(record(f"live{n}", hits=HITS[:1]))
                await writer.run(lambda conn: record_audit_event(conn, audit("view")))
                n += 1
            return n

        writing = asyncio.create_task(keep_writing())
        try:
            for _ in range(5):
                lines = await asyncio.to_thread(chained.lines)
                assert lines == ["intact", "intact"]
        finally:
            stop.set()
            written = await writing
    assert written > 0
    assert chained.lines() == ["intact", "intact"]
