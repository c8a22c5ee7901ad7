"""The archive puller's table units on SQLite and PostgreSQL: fencing, a cursor that never moves
back, quarantine kept whole and released, key generations, the lag marks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial

import pytest
from sqlalchemy import Engine, delete, update

from bot.msgaudit.store import (
    PageCommit,
    QuarantineEntry,
    bump_keys_generation,
    claim_fence,
    commit_page,
    cursor_state,
    mark_caught_up,
    mark_lag_alerted,
    quarantine_count,
    quarantined,
    release_quarantined,
    retry_failed,
)
from bot.pull_lock import FencedOut
from monitor.archive import create_schema, make_engine
from monitor.archive.chain import Chain
from monitor.archive.flags import NewFlag
from monitor.archive.msgaudit_models import MsgauditQuarantineRecord
from monitor.archive.verify import verify_database
from wecom_sdk.msgaudit import ChatDataEntry

T0 = 1_780_000_000.0


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    create_schema(eng)
    yield eng
    eng.dispose()


def entry(seq: int, ver: int = 9) -> ChatDataEntry:
    return ChatDataEntry(seq, f"msg{seq}", ver, f"key{seq}", f"body{seq}")


def test_a_newer_puller_fences_out_the_older(engine: Engine) -> None:
    with engine.begin() as conn:
        first = claim_fence(conn, T0)
        second = claim_fence(conn, T0 + 1)
    assert (first.fence, second.fence, first.seq) == (1, 2, 0)
    with pytest.raises(FencedOut), engine.begin() as conn:
        commit_page(conn, PageCommit(first.fence, 100, 0, T0, False))
    with engine.begin() as conn:
        commit_page(conn, PageCommit(second.fence, 100, 1_780_000_000_000, T0, False))
        state = cursor_state(conn)
    assert state is not None and state.seq == 100 and state.newest_msgtime == 1_780_000_000_000


def test_the_cursor_never_moves_back_and_caught_up_is_recorded(engine: Engine) -> None:
    with engine.begin() as conn:
        fence = claim_fence(conn, T0).fence
        commit_page(conn, PageCommit(fence, 500, 2000, T0, False))
        commit_page(conn, PageCommit(fence, 300, 1000, T0, True))  # an older page, replayed
        state = cursor_state(conn)
    assert state is not None
    assert (state.seq, state.newest_msgtime) == (500, 2000)
    assert state.caught_up_at == datetime.fromtimestamp(T0, UTC)
    with engine.begin() as conn:
        mark_caught_up(conn, fence + 1, T0 + 50)  # a fenced-out puller's mark is ignored
        mark_caught_up(conn, fence, T0 + 60)
        state = cursor_state(conn)
    assert state is not None and state.caught_up_at == datetime.fromtimestamp(T0 + 60, UTC)


def test_quarantine_keeps_records_whole_until_released(engine: Engine) -> None:
    failures = [QuarantineEntry(entry(s), f"no key for {s}", 10007) for s in (3, 5, 8)]
    with engine.begin() as conn:
        fence = claim_fence(conn, T0).fence
        commit_page(conn, PageCommit(fence, 10, 0, T0, True, quarantined=failures))
        commit_page(conn, PageCommit(fence, 10, 0, T0, True, quarantined=failures[:1]))
    with engine.connect() as conn:
        rows = quarantined(conn)
        assert quarantine_count(conn) == 3
    assert [r.entry for r in rows] == [entry(3), entry(5), entry(8)]
    assert rows[0].reason == "no key for 3" and rows[0].errcode == 10007 and rows[0].attempts == 1
    flag = NewFlag("ma:msg1", "recalled", "recall", "ma:msg5", datetime.fromtimestamp(T0, UTC))
    with engine.begin() as conn:
        release_quarantined(conn, [5], T0 + 5, [flag])
        retry_failed(conn, [QuarantineEntry(entry(3), "decrypt failed", 10006)], T0 + 5)
    with engine.connect() as conn:
        rows = quarantined(conn)
        after = quarantined(conn, after_seq=3)
    assert [r.entry.seq for r in rows] == [3, 8]
    assert (rows[0].attempts, rows[0].errcode, rows[0].reason) == (2, 10006, "decrypt failed")
    assert [r.entry.seq for r in after] == [8]


def test_key_generation_and_lag_marks(engine: Engine) -> None:
    with engine.begin() as conn:
        assert bump_keys_generation(conn, T0) == 1  # before any pull: the row is made
        assert bump_keys_generation(conn, T0) == 2
        state = claim_fence(conn, T0)
    assert state.keys_generation == 2 and state.fence == 1
    with engine.begin() as conn:
        mark_lag_alerted(conn, at=T0)
        assert (s := cursor_state(conn)) is not None
        assert s.lag_alerted_at == datetime.fromtimestamp(T0, UTC)
        partial(mark_lag_alerted, at=None)(conn)
        assert (s := cursor_state(conn)) is not None and s.lag_alerted_at is None


def test_quarantined_records_are_in_the_archive_hash_chain(engine: Engine) -> None:
    failures = [QuarantineEntry(entry(s), "no key", 10007) for s in (3, 5)]
    with engine.begin() as conn:
        fence = claim_fence(conn, T0).fence
        commit_page(conn, PageCommit(fence, 10, 0, T0, True, quarantined=failures))
    with engine.begin() as conn:  # retried and released: bookkeeping, not the record
        retry_failed(conn, failures[:1], T0 + 1)
        release_quarantined(conn, [5], T0 + 2)
    reports = {r.chain: r for r in verify_database(engine)}
    assert reports[Chain.ARCHIVE].ok and reports[Chain.ARCHIVE].rows["msgaudit_quarantine"] == 2
    table = MsgauditQuarantineRecord.__table__
    with engine.begin() as conn:  # someone swaps the encrypted text of a record
        conn.execute(update(table).where(table.c.seq == 3).values(encrypt_chat_msg="forged"))
    problem = next(r for r in verify_database(engine) if r.chain is Chain.ARCHIVE).problem
    assert problem is not None and "msgaudit_quarantine" in str(problem.describe())
    assert "modified" in str(problem.describe())
    with engine.begin() as conn:
        conn.execute(delete(table).where(table.c.seq == 3))
    problem = next(r for r in verify_database(engine) if r.chain is Chain.ARCHIVE).problem
    assert problem is not None and "deleted" in str(problem.describe())
