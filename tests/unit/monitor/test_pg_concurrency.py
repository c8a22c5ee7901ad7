"""Two workers on one PostgreSQL database, forced to overlap: row locks and advisory locks hold.

Each "worker" has its own engine, connections and group-commit writer, as two processes would.
To make the race certain rather than lucky, the test holds a table lock (``SHARE``) that lets
reads and row locks through but blocks writes: both workers get as far as their first write into
that table and wait there together (seen in ``pg_stat_activity``), then the lock is released.

- outbox: ``claim_due`` reads with ``FOR UPDATE SKIP LOCKED``, so while the first worker holds
  its claimed rows the second one finds none; without it both claim (and send) every row.
- alert intake: ``lock_conversation`` takes a transaction advisory lock, so the second message of
  the conversation waits for the first one's alert and joins it; without it both open one.
- hash chain: two workers' batches insert their messages side by side and wait for each other
  only to append their blocks (the chain's lock row, taken as they commit); and a batch that
  commits after another one with higher ids still verifies (blocks are not in id order).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import Connection, Engine, select, text

from bot.config import AlertsConfig
from monitor.alerts.intake import AlertIntake, CardStyle
from monitor.alerts.models import AlertRecord, OutboxRecord
from monitor.alerts.outbox import OutboxSettings, OutboxWorker
from monitor.alerts.policy import AlertPolicy, AlertSubject
from monitor.archive import Archive, GroupCommitWriter, InboundRecord, create_schema, make_engine
from monitor.archive.models import ArchivedHit
from monitor.archive.verify import verify_database
from rules.models import Audience, Hit, Severity
from tests.support.storage import Gate, queued
from tests.support.waiting import until
from tests.unit.monitor.test_outbox import GROUP, Clock
from wecom_sdk.client import RetryPolicy, WeComClient
from wecom_sdk.testing.fake_api import FakeWeCom

ServerFactory = Callable[..., Awaitable[TestServer]]
WORKERS = ("sentinel-w1", "sentinel-w2")


def _named(url: str, name: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}application_name={name}"


@pytest.fixture
def engines(pg_schema_url: str) -> Iterator[list[Engine]]:
    """One engine per worker (named, so ``pg_stat_activity`` tells them apart), schema made."""
    made = [make_engine(_named(pg_schema_url, name)) for name in WORKERS]
    create_schema(made[0])
    yield made
    for engine in made:
        engine.dispose()


@pytest.fixture
async def writers(engines: list[Engine]) -> AsyncIterator[list[GroupCommitWriter]]:
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(GroupCommitWriter(e)) for e in engines]


class TableLock:
    """``LOCK TABLE <table> IN SHARE MODE`` on a connection of the test's own, until released."""

    def __init__(self, engine: Engine, table: str) -> None:
        self._conn: Connection = engine.connect()
        self._tx = self._conn.begin()
        self._conn.execute(text(f"LOCK TABLE {table} IN SHARE MODE"))

    def waiting(self) -> int:
        """Worker backends waiting for a lock (the table's or an advisory one)."""
        # Activity is read once per transaction unless the snapshot is cleared.
        self._conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        rows = self._conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = ANY(:names) AND wait_event_type = 'Lock'"
            ),
            {"names": list(WORKERS)},
        )
        return int(rows.scalar_one())

    def release(self) -> None:
        self._tx.commit()
        self._conn.close()


def _subject(conversation: str, clock: Clock) -> AlertSubject:
    return AlertSubject(
        conversation_id=conversation,
        customer_id=conversation.rpartition(":")[2],
        customer_name="",
        staff_userid="",
        author=Audience.CUSTOMER,
        text="我要维权",
        hits=(Hit("维权", 2, 4, GROUP.name, Severity.HIGH),),
        at=clock(),
    )


def _record(n: int, conversation: str, policy: AlertPolicy, clock: Clock) -> InboundRecord:
    return InboundRecord(
        dedupe_key=f"msg:{n}",
        channel="kf",
        msg_type="text",
        from_user=conversation.rpartition(":")[2],
        to_user="wk",
        create_time=0,
        raw="{}",
        content="我要维权",
        conversation_id=conversation,
        direction="customer",
        rules_version="v1",
        hits=(ArchivedHit("维权", GROUP.name, 3, 2, 4),),
        effects=(AlertIntake(policy, _subject(conversation, clock), CardStyle()),),
    )


@pytest.fixture
def policy() -> AlertPolicy:
    return AlertPolicy(AlertsConfig(managers=("mgr1",)), {GROUP.name: GROUP})


async def test_two_outbox_workers_never_send_one_row_twice(
    engines: list[Engine],
    writers: list[GroupCommitWriter],
    policy: AlertPolicy,
    aiohttp_server: ServerFactory,
) -> None:
    clock = Clock()
    archive = Archive(writers[0], clock=clock)
    for n in range(20):  # 20 conversations: 20 card rows (mgr1's budget for a minute)
        await archive.store_inbound(_record(n, f"kf:wk:c{n}", policy, clock))

    fake = FakeWeCom(corp_id="wwcorp")
    server = await aiohttp_server(fake.app)
    async with AsyncExitStack() as stack:
        workers: list[OutboxWorker] = []
        for writer in writers:
            client = await stack.enter_async_context(
                WeComClient(
                    "wwcorp",
                    fake.secret,
                    api_base=str(server.make_url("/cgi-bin/")),
                    agent_id=1000002,
                    retry=RetryPolicy(attempts=1),
                )
            )
            settings = OutboxSettings(escalation_every_s=1e9)
            workers.append(
                OutboxWorker(
                    writer, client, lambda: policy, CardStyle(), settings=settings, clock=clock
                )
            )

        lock = TableLock(engines[0], "outbox")
        try:
            passes = [asyncio.create_task(w.step()) for w in workers]
            # Both claims overlap: one worker waits to write its lease, the other one is either
            # waiting beside it (both read the same rows) or done (it found them locked).
            await until(
                lambda: (
                    lock.waiting() >= 1
                    and lock.waiting() + sum(p.done() for p in passes) == len(passes)
                ),
                "both workers to claim at once",
            )
        finally:
            lock.release()
        handled = await asyncio.gather(*passes)
        for worker in workers:
            await worker.drain()

    assert sum(handled) == 20, handled
    sent = Counter(
        c.body["template_card"]["task_id"]
        for c in fake.history
        if c.path == "message/send" and c.errcode == 0  # repeats included
    )
    assert len(sent) == 20 and set(sent.values()) == {1}, sent
    with engines[0].connect() as conn:
        statuses = Counter(r.status for r in conn.execute(select(OutboxRecord)))  # type: ignore[arg-type]
    assert statuses == {"sent": 20}


async def test_two_intakes_of_one_conversation_at_once_open_one_alert(
    engines: list[Engine], writers: list[GroupCommitWriter], policy: AlertPolicy
) -> None:
    clock = Clock()
    archives = [Archive(w, clock=clock) for w in writers]
    lock = TableLock(engines[0], "alert")
    try:
        stores = [
            asyncio.create_task(archive.store_inbound(_record(n, "kf:wk:same", policy, clock)))
            for n, archive in enumerate(archives)
        ]
        # One waits to insert its alert, the other for the conversation's advisory lock (or,
        # without it, to insert a second alert).
        await until(lambda: lock.waiting() == 2, "both intakes to be inside their transactions")
    finally:
        lock.release()
    results = await asyncio.gather(*stores)
    assert all(r.inserted for r in results)
    with engines[0].connect() as conn:
        alerts: list[Any] = list(conn.execute(select(AlertRecord)))  # type: ignore[arg-type]
    assert len(alerts) == 1, [a.alert_id for a in alerts]
    assert alerts[0].count == 2


def _plain(key: str) -> InboundRecord:
    return InboundRecord(
        dedupe_key=key,
        channel="app",
        msg_type="text",
        from_user="u",
        to_user="c",
        create_time=0,
        raw="<xml/>",
        content=key,
    )


def _block_ids(engine: Engine) -> list[list[str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT entries FROM chain_block WHERE chain = 'archive' ORDER BY seq")
        ).scalars()
        return [[e.split(":")[0] for e in entries.split()] for entries in rows]


async def test_two_workers_wait_for_each_other_only_to_append_their_blocks(
    engines: list[Engine], writers: list[GroupCommitWriter]
) -> None:
    archives = [Archive(w) for w in writers]
    # SHARE lets reads and row locks through, not the block's INSERT: the worker that locked the
    # chain waits there, the other one waits for that row lock. Both got there with their
    # messages inserted: nothing before the block append made them wait.
    lock = TableLock(engines[0], "chain_block")
    try:
        stores = [
            asyncio.create_task(archive.store_inbound(_plain(f"w{n}")))
            for n, archive in enumerate(archives)
        ]
        await until(lambda: lock.waiting() == 2, "both workers at their block append")
        with engines[0].connect() as conn:
            activity = conn.execute(
                text(
                    "SELECT query FROM pg_stat_activity "
                    "WHERE application_name = ANY(:names) AND wait_event_type = 'Lock'"
                ),
                {"names": list(WORKERS)},
            ).scalars()
            waiting = sorted(" ".join(q.split()[:2]) for q in activity)
    finally:
        lock.release()
    results = await asyncio.gather(*stores)
    assert waiting == ["INSERT INTO", "SELECT chain"]
    assert sorted(_block_ids(engines[0])) == sorted([[f"m{r.message_id}"] for r in results])
    assert [r.problem for r in verify_database(engines[0])] == [None, None]


async def test_blocks_committed_out_of_id_order_still_verify(
    engines: list[Engine], writers: list[GroupCommitWriter]
) -> None:
    first, second = (Archive(w) for w in writers)
    busy, inside = Gate(), Gate()
    held = await busy.hold(writers[0])  # the next units of worker 1 form one batch:
    early = asyncio.create_task(first.store_inbound(_plain("early")))  # its message first,
    holding = asyncio.create_task(writers[0].run(inside))  # then a unit that waits inside
    await queued(writers[0], 3)
    busy.release.set()
    await held
    assert await asyncio.to_thread(inside.entered.wait, 5)  # "early" has its id, uncommitted
    late = await second.store_inbound(_plain("late"))  # a higher id, committed first
    inside.release.set()
    stored_early = await early
    await holding
    assert stored_early.message_id < late.message_id
    assert _block_ids(engines[0]) == [[f"m{late.message_id}"], [f"m{stored_early.message_id}"]]
    assert [r.problem for r in verify_database(engines[0])] == [None, None]
