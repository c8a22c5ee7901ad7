"""The alerts benchmark's plumbing: simulated clock, throw-away databases, stores, the fake WeCom.

Everything here is harness; what runs is the production code: ``Archive.store_inbound`` with an
``AlertIntake`` effect, the group-commit writer, ``WeComClient`` over real HTTP to
``wecom_sdk.testing.fake_api.FakeWeCom`` on a loopback port.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from bench.alerts_workload import OPEN_KFID, RULES_VERSION, ScenarioMessage
from bench.pg_schema import fresh_schema

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from monitor.alerts.intake import AlertIntake, CardStyle
    from monitor.alerts.policy import AlertPolicy
    from monitor.archive import Archive, GroupCommitWriter
    from monitor.archive.models import InboundRecord
    from wecom_sdk.client import WeComClient
    from wecom_sdk.testing.fake_api import FakeWeCom

__all__ = [
    "Db",
    "IntakeStats",
    "SimClock",
    "database",
    "fake_wecom",
    "next_due",
    "record",
    "storage",
    "store_all",
]

HOST = "127.0.0.1"
CORP_ID = "wwbench00000001"
AGENT_ID = 1000002

_RECEIVED: ContextVar[datetime] = ContextVar("bench_received_at")
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class IntakeStats:
    """Wall time of a phase's stores, and the size of each group commit they made."""

    wall_s: float = 0.0
    commits: list[int] = field(default_factory=list)

    @property
    def mean_batch(self) -> float:
        return sum(self.commits) / len(self.commits) if self.commits else 0.0


class SimClock:
    """The simulated "now" of the worker, the client's token cache and the fake."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def timestamp(self) -> float:
        return self.now.timestamp()


@contextmanager
def database(url: str | None) -> Iterator[str]:
    """URL of an empty database: a temp SQLite file, or a fresh schema on the PostgreSQL ``url``."""
    if url is None:
        with tempfile.TemporaryDirectory(prefix="bench-alerts-") as tmp:
            yield f"sqlite:///{tmp}/sentinel.db"
        return
    with fresh_schema(url, "bench_alerts") as schema_url:
        yield schema_url


@dataclass(slots=True)
class Db:
    """One phase's database: engine, started writer, archive, and its commit counting."""

    engine: Engine
    writer: GroupCommitWriter
    archive: Archive
    stats: IntakeStats
    #: Count commits into ``stats`` (only while this phase's stores are in flight).
    counting: bool = False


@asynccontextmanager
async def storage(url: str, stats: IntakeStats) -> AsyncIterator[Db]:
    """Engine, schema, started group-commit writer and archive on ``url``."""
    from monitor.archive import Archive, GroupCommitWriter, create_schema, make_engine

    engine = make_engine(url)
    try:
        create_schema(engine)
        db: Db | None = None

        def on_commit(size: int, _seconds: float) -> None:
            if db is not None and db.counting:
                stats.commits.append(size)

        async with GroupCommitWriter(engine, on_commit=on_commit) as writer:
            db = Db(engine, writer, Archive(writer, clock=_RECEIVED.get), stats)
            yield db
    finally:
        engine.dispose()


def record(
    message: ScenarioMessage, policy: AlertPolicy, style: CardStyle
) -> tuple[InboundRecord, AlertIntake]:
    """The ``InboundRecord`` the kf pipeline stores for ``message``, and its ``AlertIntake``."""
    from monitor.alerts.intake import AlertIntake
    from monitor.alerts.policy import AlertSubject
    from monitor.archive.models import ArchivedHit, InboundRecord

    subject = AlertSubject(
        conversation_id=message.conversation_id,
        customer_id=message.customer_id,
        customer_name=message.customer_name,
        staff_userid=message.staff_userid,
        author=message.author,
        text=message.text,
        hits=message.hits,
        at=message.at,  # replaced by received_at in the store, which is this time too
    )
    intake = AlertIntake(policy, subject, style, rules_version=RULES_VERSION)
    inbound = InboundRecord(
        dedupe_key=message.dedupe_key,
        channel="kf",
        msg_type="text",
        from_user=message.from_user,
        to_user=OPEN_KFID,
        create_time=int(message.at.timestamp()),
        raw=message.raw(),
        content=message.text,
        rules_version=RULES_VERSION,
        conversation_id=message.conversation_id,
        direction=message.author.value,
        hits=tuple(
            ArchivedHit(h.word, h.group, int(h.severity), h.start, h.end) for h in message.hits
        ),
        effects=(intake,),
    )
    return inbound, intake


async def store_all(
    db: Db, items: Sequence[tuple[datetime, InboundRecord]], concurrency: int
) -> None:
    """Store ``items`` with up to ``concurrency`` in flight, each stamped with its own time.

    Submitted in list order: each task takes the next item and submits it before it yields, so
    one conversation's messages reach the writer, and its alert, in time order.
    """
    pending = iter(items)

    async def feeder() -> None:
        for at, inbound in pending:
            _RECEIVED.set(at)  # this task's own context; the archive's clock reads it
            await db.archive.store_inbound(inbound)

    db.counting = True
    started = time.perf_counter()
    try:
        await asyncio.gather(*(feeder() for _ in range(min(concurrency, len(items)))))
    finally:
        db.stats.wall_s += time.perf_counter() - started
        db.counting = False


def _attempt_recorder(
    clock: SimClock, attempts: list[tuple[datetime, dict[str, Any]]]
) -> Middleware:
    """Middleware noting every ``message/send`` the fake answered with errcode 0, and when.

    The fake's own ``calls`` leave out what its duplicate check dropped, as WeCom does; these
    attempts include them, so a dropped digest is told apart from one never sent.
    """

    @web.middleware
    async def note(request: web.Request, handler: _Handler) -> web.StreamResponse:
        response = await handler(request)
        if request.path == "/cgi-bin/message/send" and isinstance(response, web.Response):
            body = response.body
            if isinstance(body, bytes) and json.loads(body).get("errcode") == 0:
                attempts.append((clock(), json.loads(await request.text())))
        return response

    return note


@asynccontextmanager
async def fake_wecom(
    clock: SimClock,
) -> AsyncIterator[tuple[FakeWeCom, list[tuple[datetime, dict[str, Any]]], WeComClient]]:
    """FakeWeCom on a loopback port, its accepted ``message/send`` attempts, and a client."""
    from wecom_sdk.client import WeComClient
    from wecom_sdk.testing.fake_api import FakeWeCom

    fake = FakeWeCom(corp_id=CORP_ID, clock=clock.timestamp)
    attempts: list[tuple[datetime, dict[str, Any]]] = []
    app = fake.app
    app.middlewares.append(_attempt_recorder(clock, attempts))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, HOST, 0)
        await site.start()
        port = runner.addresses[0][1]
        client = WeComClient(
            CORP_ID,
            fake.secret,
            api_base=f"http://{HOST}:{port}/cgi-bin/",
            agent_id=AGENT_ID,
            clock=clock.timestamp,
        )
        try:
            yield fake, attempts, client
        finally:
            await client.close()
    finally:
        await runner.cleanup()


def next_due(engine: Engine, escalate_after_s: int) -> datetime | None:
    """Earliest pending outbox row or escalation to come (a read beside the writer)."""
    from sqlalchemy import func, select

    from monitor.alerts import store
    from monitor.alerts.models import OutboxStatus
    from monitor.alerts.policy import AlertStatus

    outbox, alerts = store.OUTBOX, store.ALERTS
    with engine.connect() as conn:
        row_due = conn.execute(
            select(func.min(outbox.c.next_at)).where(outbox.c.status == OutboxStatus.PENDING)
        ).scalar()
        first = conn.execute(
            select(func.min(alerts.c.first_at)).where(
                alerts.c.status == AlertStatus.OPEN.value, alerts.c.escalated.is_(False)
            )
        ).scalar()
    due = [_aware(row_due)] if row_due is not None else []
    if first is not None:
        due.append(_aware(first) + timedelta(seconds=escalate_after_s))
    return min(due) if due else None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
