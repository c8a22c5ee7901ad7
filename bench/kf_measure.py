"""One kf benchmark run: queue the messages, post one callback, time the drain, check the result.

The clock starts right before the sealed ``kf_msg_or_event`` POST. Measured (wall time, from
then): the callback's answer; every queued message archived (a ``count(*)`` polled every
``POLL_S`` on the message table: channel ``kf``, direction customer or staff); the first and the
last message the fake delivered (its own ``time.time()`` stamp); the puller idle again. Then the
invariants are checked on the database and on what the fake recorded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.kf_env import bot_server, database, fake_server, redis_prefix, temp_dir, write_config
from bench.kf_workload import OPEN_KFID, SERVICER, Workload, build_workload

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from wecom_sdk.testing.fake_api import FakeWeCom

__all__ = ["POLL_S", "KfReport", "Settings", "measure"]

POLL_S = 0.25
#: WeCom allows 5 messages through kf/send_msg after a customer's latest message (doc 94677).
BUDGET = 5


@dataclass(frozen=True, slots=True)
class Settings:
    """What to run: the queue's size and seed, and the storage."""

    messages: int = 10_000
    seed: int = 6
    #: Share of customers writing 10 messages instead of 5 (0: all write 5).
    chatty_share: float = 0.01
    database_url: str | None = None  # PostgreSQL; None = a SQLite file in a temp dir
    redis_url: str | None = None
    timeout_s: float = 900.0

    @property
    def backend(self) -> str:
        db = "PostgreSQL" if self.database_url else "SQLite (WAL, synchronous=FULL)"
        return f"{db} + {'Redis' if self.redis_url else 'in-process locks and dedupe'}"


@dataclass(slots=True)
class KfReport:
    """What one run measured and found (times in seconds from the callback POST)."""

    settings: Settings
    customers: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    callback_s: float = 0.0
    archived_s: float | None = None
    first_reply_s: float | None = None
    last_reply_s: float | None = None
    idle_s: float = 0.0
    cpu_s: float = 0.0
    #: When each sync_msg call was answered, and how many items it returned.
    pages: list[tuple[float, int]] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    #: Delivered kf/send_msg messages by kind (reply, handoff), and the welcome-free total.
    sent: Counter[str] = field(default_factory=Counter)
    decisions: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    alerts: int = 0
    refused: Counter[int] = field(default_factory=Counter)
    duplicates: int = 0
    most_to_one: int = 0
    #: Warnings the bot logged, by (logger, message template).
    warnings: Counter[tuple[str, str]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every invariant held."""
        return not self.failures

    @property
    def rate(self) -> float:
        """Archived messages per second (queue size over the time to archive all)."""
        n = self.settings.messages
        return n / self.archived_s if self.archived_s else 0.0


class _WarningCounter(logging.Handler):
    def __init__(self, into: Counter[tuple[str, str]]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into[record.name, str(record.msg)] += 1


@contextmanager
def _counting_warnings(into: Counter[tuple[str, str]]) -> Iterator[None]:
    """Count the bot's warnings instead of printing each (a busy run may log thousands)."""
    handler = _WarningCounter(into)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


def _count_archived(engine: Engine) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        query = (
            "SELECT count(*) FROM message "
            "WHERE channel = 'kf' AND direction IN ('customer', 'staff')"
        )
        return int(conn.execute(text(query)).scalar_one())


def _rows(engine: Engine, query: str) -> list[Any]:
    from sqlalchemy import text

    with engine.connect() as conn:
        return list(conn.execute(text(query)))


async def _drain(report: KfReport, app: Any, engine: Engine, t0: float) -> None:
    """Wait for the puller to go idle while polling the archive; fills the times."""
    from bot.web.keys import KF_PULLER

    n = report.settings.messages

    async def poll() -> None:
        while await asyncio.to_thread(_count_archived, engine) < n:
            await asyncio.sleep(POLL_S)
        report.archived_s = time.time() - t0

    poller = asyncio.create_task(poll())
    try:
        await app[KF_PULLER].idle()
        report.idle_s = time.time() - t0
        # Idle: nothing more will be archived; one more look settles it either way.
        await asyncio.wait_for(asyncio.shield(poller), 2.0)
    except TimeoutError:
        report.failures.append("not every queued message was archived before the puller idled")
    finally:
        poller.cancel()


def _check(report: KfReport, fake: FakeWeCom, work: Workload, engine: Engine) -> None:
    """The invariants; each violation goes to ``report.failures``."""
    fail = report.failures.append
    rows = _rows(
        engine,
        "SELECT dedupe_key, count(*) FROM message WHERE channel = 'kf' "
        "AND direction IN ('customer', 'staff') GROUP BY dedupe_key",
    )
    archived = {str(key): int(count) for key, count in rows}
    missing, extra = work.keys - set(archived), set(archived) - work.keys
    twice = [key for key, count in archived.items() if count != 1]
    if missing or extra or twice:
        fail(f"archive: {len(missing)} missing, {len(extra)} unexpected, {len(twice)} not once")
    questions = sum(1 for item in work.items if item["origin"] == 3)
    decided = _rows(engine, "SELECT count(*), count(DISTINCT dedupe_key) FROM kf_decision")[0]
    if tuple(decided) != (questions, questions):
        fail(f"decisions: {tuple(decided)} rows/distinct for {questions} customer messages")
    delivered = [d for d in fake.kf_deliveries if d.via == "send_msg"]
    # Every customer wrote all of its messages before the bot's first answer, so each one's
    # window is the whole run: what the bot attempted (delivered or refused) must fit in 5.
    refused = [str(b.get("touser")) for p, _c, b in fake.kf_refused if p == "kf/send_msg"]
    attempts = Counter([d.touser for d in delivered] + refused)
    report.most_to_one = max(attempts.values(), default=0)
    over = {user: n for user, n in attempts.items() if n > BUDGET}
    if over:
        fail(f"budget: {len(over)} customers were sent more than {BUDGET}, e.g. {_some(over)}")
    msgids = Counter(d.msgid for d in fake.kf_deliveries)
    if dupes := [m for m, n in msgids.items() if n > 1]:
        fail(f"duplicates: {len(dupes)} msgids delivered more than once")
    if report.refused:
        fail(f"refused by the fake: {dict(report.refused)} (the bot overspent the budget)")
    if served := [d.touser for d in delivered if d.touser in set(work.with_servicer)]:
        fail(f"{len(served)} messages to customers a servicer holds")
    if report.actions.get("pending"):
        fail(f"{report.actions['pending']} actions still pending after the drain")


def _some(over: dict[str, int]) -> str:
    return ", ".join(f"{user}: {n}" for user, n in sorted(over.items())[:3])


def _collect(report: KfReport, fake: FakeWeCom, engine: Engine, t0: float) -> None:
    """Counts from the fake and the kf tables."""
    for path in ("kf/sync_msg", "kf/send_msg", "kf/service_state/get", "kf/service_state/trans"):
        report.calls[path] = len(fake.calls_to(path))
    report.calls["message/send (alert cards)"] = len(fake.calls_to("message/send"))
    stamps = [d.at - t0 for d in fake.kf_deliveries]
    report.first_reply_s = min(stamps, default=None)
    report.last_reply_s = max(stamps, default=None)
    kinds = {"r": "reply", "h": "handoff", "w": "welcome"}
    report.sent = Counter(kinds.get(d.msgid[:1], "other") for d in fake.kf_deliveries)
    report.refused = Counter(code for _path, code, _body in fake.kf_refused)
    report.duplicates = fake.kf_duplicates
    for outcome, n in _rows(engine, "SELECT outcome, count(*) FROM kf_decision GROUP BY outcome"):
        report.decisions[str(outcome)] = int(n)
    for status, n in _rows(engine, "SELECT status, count(*) FROM kf_reply GROUP BY status"):
        report.actions[str(status)] = int(n)
    report.alerts = int(_rows(engine, "SELECT count(*) FROM alert")[0][0])


async def measure(settings: Settings) -> KfReport:
    """Set everything up, run the drain once, check it; never raises for a failed invariant."""
    from bot.web.keys import WRITER

    report = KfReport(settings)
    with (
        _counting_warnings(report.warnings),
        temp_dir() as tmp_name,
        database(settings.database_url, Path(tmp_name)) as url,
    ):
        async with redis_prefix(settings.redis_url) as prefix, fake_server() as (fake, api):
            config = write_config(
                Path(tmp_name),
                database_url=url,
                redis_url=settings.redis_url or "",
                prefix=prefix,
                api_base=api,
            )
            async with bot_server(config) as bot:
                work = build_workload(
                    settings.messages,
                    now=int(time.time()),
                    chatty_share=settings.chatty_share,
                    seed=settings.seed,
                )
                report.customers, report.kinds = work.customers, work.kinds
                for user in work.with_servicer:
                    fake.set_kf_state(OPEN_KFID, user, 3, SERVICER)
                fake.add_kf_messages(OPEN_KFID, work.items)
                t0 = time.time()

                async def page_done(body: dict[str, Any]) -> None:
                    cursor = int(body.get("cursor") or 0)
                    size = min(int(body.get("limit", 1000)), len(work.items) - cursor)
                    report.pages.append((time.time() - t0, size))

                fake.on_call("kf/sync_msg", page_done)
                engine = bot.app[WRITER].engine
                cpu0 = time.process_time()
                try:
                    async with asyncio.timeout(settings.timeout_s):
                        status, body, report.callback_s = await bot.kf_event(
                            OPEN_KFID, fake.issue_kf_token(OPEN_KFID)
                        )
                        if (status, body) != (200, b""):
                            report.failures.append(f"callback answered {status} {body[:80]!r}")
                            return report
                        await _drain(report, bot.app, engine, t0)
                except TimeoutError:
                    report.failures.append(f"not drained within {settings.timeout_s:g} s")
                report.cpu_s = time.process_time() - cpu0
                _collect(report, fake, engine, t0)
                _check(report, fake, work, engine)
    return report
