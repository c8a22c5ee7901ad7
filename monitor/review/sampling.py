"""Sampling (抽检): conversations without any hit, drawn each week for review.

The word list only finds what it knows. Each ISO week (Monday to Sunday, UTC, by when messages
were archived: ``message.received_at``), ``[review] sample_rate`` of each staff member's
conversations *without any hit that week* become cases of kind :attr:`AlertKind.SAMPLE` in the
review queue, shown as 抽检: at least one per staff member who had any such conversation (when
the rate is above 0). A staff member's conversations are those they wrote in (``direction`` =
``staff``, ``from_user`` = their userid: the kf servicer, the 会话内容存档 member); the app
channel has no staff side and is never sampled.

The draw is deterministic: a staff member's conversations are ranked by HMAC-SHA256(sample key,
week + conversation id) and the lowest ``round(rate × n)`` (at least one) are taken, so every
worker and every rerun picks the same ones. The key (``review_secret.sample_key``, generated once)
keeps staff from predicting which of their chats will be read. A case's id is
``sample:<week>:<digest of the conversation>``, inserted only if absent (``ON CONFLICT DO
NOTHING``): workers running at once, or a rerun, add nothing. A conversation drawn for two staff
members is one case (of the first, by userid). Sampled cases send no card to anyone, are never
escalated by time, and are worked like any case (已处理 / 误报 / 升级).

A week is final once over (nothing is archived into the past), so the periodic job
(:class:`Sampler`, started by ``bot.sampling_task``) samples the last complete week every hour;
``run_bot.py review sample [--week YYYY-Www]`` does one week once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, Engine, Table, and_, func, select

from monitor.alerts import store
from monitor.alerts.policy import AlertKind, AlertStatus, OpenAlert
from monitor.archive.audit import AuditEvent, record_audit_event
from monitor.archive.models import HitRecord, MessageRecord
from monitor.archive.upsert import insert_ignore
from monitor.archive.writer import GroupCommitWriter
from monitor.errors import StorageError
from monitor.review.pseudonyms import load_secret
from monitor.review.review_secrets import SAMPLE_KEY
from rules.models import Severity

__all__ = [
    "SAMPLE_ACTION",
    "Candidate",
    "IsoWeek",
    "SampleReport",
    "Sampler",
    "pick",
    "rank",
    "run_sampling",
    "sample_id",
    "sample_size",
    "week_candidates",
]

SAMPLE_ACTION = "sample"
"""The audit action recorded (actor ``system``) for each sampled case made."""

# The monitor package's loggers live in monitor.log; this one is the review sampling job's own.
sample_log = logging.getLogger("sentinel.review.sampling")

_MESSAGES: Table = MessageRecord.__table__
_HITS: Table = HitRecord.__table__
_WEEK = re.compile(r"(\d{4})-W(\d{2})")


@dataclass(frozen=True, slots=True, order=True)
class IsoWeek:
    """An ISO week, written ``2026-W48``; it runs Monday 00:00 to the next Monday 00:00 UTC."""

    year: int
    week: int

    @classmethod
    def parse(cls, text: str) -> IsoWeek:
        """``YYYY-Www``; ValueError for anything else or a week the year does not have."""
        found = _WEEK.fullmatch(text.strip())
        if found is None:
            raise ValueError(f"not an ISO week (YYYY-Www): {text!r}")
        week = cls(int(found.group(1)), int(found.group(2)))
        week.start  # noqa: B018  (raises ValueError for week 0 or 53 of a 52-week year)
        return week

    @classmethod
    def of(cls, at: datetime) -> IsoWeek:
        """The week ``at`` (any time zone) falls in, in UTC."""
        year, week, _ = at.astimezone(UTC).isocalendar()
        return cls(year, week)

    @property
    def start(self) -> datetime:
        day = date.fromisocalendar(self.year, self.week, 1)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=7)

    def previous(self) -> IsoWeek:
        return IsoWeek.of(self.start - timedelta(days=1))

    def __str__(self) -> str:
        return f"{self.year}-W{self.week:02d}"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One conversation a staff member wrote in during the week, without a hit that week."""

    conversation_id: str
    staff_userid: str
    customer_id: str
    first_at: datetime
    last_at: datetime


def sample_size(n: int, rate: float) -> int:
    """How many of ``n`` conversations to draw: ``rate × n`` rounded half up, at least 1 (when
    ``n`` and ``rate`` are above 0), at most ``n``."""
    if n <= 0 or rate <= 0:
        return 0
    # The epsilon keeps 0.07 × 100 = 7.000000000000001 (and 6.999...) at 7.
    return min(n, max(1, int(rate * n + 0.5 + 1e-9)))


def rank(key: bytes, week: IsoWeek, conversation_id: str) -> bytes:
    """A conversation's place in the week's draw (lowest first), under the sample key."""
    message = f"{week}\x00{conversation_id}".encode()
    return hmac.new(key, message, hashlib.sha256).digest()


def pick(
    by_staff: Mapping[str, Sequence[Candidate]], rate: float, key: bytes, week: IsoWeek
) -> list[Candidate]:
    """Each staff member's draw, one candidate per conversation (the first staff member's by
    userid when two drew it), in userid then rank order. Pure."""
    chosen: dict[str, Candidate] = {}
    for staff in sorted(by_staff):
        candidates = by_staff[staff]
        ranked = sorted(candidates, key=lambda c: rank(key, week, c.conversation_id))
        for candidate in ranked[: sample_size(len(ranked), rate)]:
            chosen.setdefault(candidate.conversation_id, candidate)
    return list(chosen.values())


def sample_id(week: IsoWeek, conversation_id: str) -> str:
    """The case id of a sampled conversation: ``sample:<week>:<16 hex of its SHA-256>``
    (URL-safe, short, and without the customer id a conversation id may hold)."""
    digest = hashlib.sha256(conversation_id.encode("utf-8")).hexdigest()[:16]
    return f"sample:{week}:{digest}"


def week_candidates(conn: Connection, week: IsoWeek) -> dict[str, list[Candidate]]:
    """Per staff userid, the conversations they wrote in during ``week`` with no hit that week."""
    in_week = and_(
        _MESSAGES.c.received_at >= week.start,
        _MESSAGES.c.received_at < week.end,
        _MESSAGES.c.conversation_id.is_not(None),
    )
    hit = {
        row.conversation_id
        for row in conn.execute(
            select(_MESSAGES.c.conversation_id)
            .distinct()
            .join(_HITS, _HITS.c.message_id == _MESSAGES.c.id)
            .where(in_week)
        )
    }
    customers = {
        row.conversation_id: row.customer
        for row in conn.execute(
            select(_MESSAGES.c.conversation_id, func.min(_MESSAGES.c.from_user).label("customer"))
            .where(in_week, _MESSAGES.c.direction == "customer")
            .group_by(_MESSAGES.c.conversation_id)
        )
    }
    by_staff: dict[str, list[Candidate]] = defaultdict(list)
    for row in conn.execute(
        select(
            _MESSAGES.c.conversation_id,
            _MESSAGES.c.from_user,
            func.min(_MESSAGES.c.received_at).label("first_at"),
            func.max(_MESSAGES.c.received_at).label("last_at"),
        )
        .where(in_week, _MESSAGES.c.direction == "staff", _MESSAGES.c.from_user != "")
        .group_by(_MESSAGES.c.conversation_id, _MESSAGES.c.from_user)
    ):
        if row.conversation_id in hit:
            continue
        by_staff[row.from_user].append(
            Candidate(
                conversation_id=row.conversation_id,
                staff_userid=row.from_user,
                customer_id=customers.get(row.conversation_id) or _customer_in(row.conversation_id),
                first_at=_aware(row.first_at),
                last_at=_aware(row.last_at),
            )
        )
    return dict(by_staff)


def _aware(value: datetime) -> datetime:
    # An aggregate skips the column's type on SQLite: naive UTC comes back.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _customer_in(conversation_id: str) -> str:
    """The customer a conversation id names, when no customer wrote that week."""
    parts = conversation_id.split(":")
    if parts[0] == "kf" and len(parts) >= 3:
        return parts[-1]
    if parts[0] == "ma" and len(parts) == 3 and parts[1] != "room":
        return parts[2]
    return ""


@dataclass(frozen=True, slots=True)
class SampleReport:
    """What one run did: the week, how many conversations could be drawn, the cases made."""

    week: IsoWeek
    staff: int
    """Staff members with at least one conversation without hits."""
    candidates: int
    """Conversations without hits (a conversation of two staff members counts twice)."""
    picked: int
    """Conversations drawn (each is one case)."""
    created: tuple[str, ...]
    """Case ids made by this run (the others existed already)."""


def _sample_alert(candidate: Candidate, week: IsoWeek) -> OpenAlert:
    return OpenAlert(
        alert_id=sample_id(week, candidate.conversation_id),
        conversation_id=candidate.conversation_id,
        kind=AlertKind.SAMPLE,
        severity=Severity.LOW,
        words=(),
        count=0,
        first_at=candidate.first_at,
        last_at=candidate.last_at,
        latest_text="",
        recipients=(),
        customer_id=candidate.customer_id,
        staff_userid=candidate.staff_userid,
        status=AlertStatus.OPEN,
        notified_severity=Severity.LOW,
    )


def _insert(
    conn: Connection, alerts: Iterable[OpenAlert], week: IsoWeek, rate: float, now: datetime
) -> tuple[str, ...]:
    made: list[str] = []
    # RETURNING, not rowcount: the PostgreSQL engine does not report a row count here.
    statement = insert_ignore(conn.dialect, store.ALERTS, ["alert_id"]).returning(
        store.ALERTS.c.alert_id
    )
    for alert in alerts:
        values = {**store.alert_values(alert), "cards_sent": 0, "rules_version": ""}
        if conn.execute(statement, values).first() is None:
            continue  # another worker (or an earlier run) made it
        made.append(alert.alert_id)
        record_audit_event(
            conn,
            AuditEvent(
                at=now,
                actor="system",
                source="system",
                action=SAMPLE_ACTION,
                target=alert.alert_id,
                detail={"week": str(week), "rate": f"{rate:g}"},
            ),
        )
    return tuple(made)


async def run_sampling(
    writer: GroupCommitWriter, week: IsoWeek, rate: float, now: datetime
) -> SampleReport:
    """Draw ``week``'s sample at ``rate`` and make the cases not made yet.

    The reads run on the engine in a thread; only missing cases go through the writer (a rerun
    of a sampled week writes nothing).
    """
    if rate <= 0:
        return SampleReport(week, 0, 0, 0, ())
    key = await writer.run(lambda conn: load_secret(conn, SAMPLE_KEY, now))
    engine: Engine = writer.engine

    def read() -> tuple[dict[str, list[Candidate]], list[OpenAlert], int]:
        with engine.connect() as conn:
            by_staff = week_candidates(conn, week)
            alerts = [_sample_alert(c, week) for c in pick(by_staff, rate, key, week)]
            ids = [a.alert_id for a in alerts]
            existing: set[str] = set()
            for start in range(0, len(ids), 500):
                existing.update(
                    conn.execute(
                        select(store.ALERTS.c.alert_id).where(
                            store.ALERTS.c.alert_id.in_(ids[start : start + 500])
                        )
                    ).scalars()
                )
        return by_staff, [a for a in alerts if a.alert_id not in existing], len(alerts)

    by_staff, missing, picked = await asyncio.to_thread(read)
    created: tuple[str, ...] = ()
    if missing:
        created = await writer.run(lambda conn: _insert(conn, missing, week, rate, now))
    return SampleReport(
        week=week,
        staff=len(by_staff),
        candidates=sum(len(c) for c in by_staff.values()),
        picked=picked,
        created=created,
    )


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Sampler:
    """The periodic job: every ``interval_s``, sample the last complete week (idempotent)."""

    def __init__(
        self,
        writer: GroupCommitWriter,
        rate: float,
        *,
        clock: Callable[[], datetime] = _utcnow,
        interval_s: float = 3600.0,
    ) -> None:
        self._writer = writer
        self._rate = rate
        self._clock = clock
        self._interval = interval_s

    async def run(self) -> None:
        """Sample now, then every ``interval_s``, until cancelled."""
        while True:
            await self.run_once()
            await asyncio.sleep(self._interval)

    async def run_once(self) -> SampleReport | None:
        """Sample the last complete week; a failure is logged and left to the next pass."""
        now = self._clock()
        week = IsoWeek.of(now).previous()
        try:
            report = await run_sampling(self._writer, week, self._rate, now)
        except StorageError as exc:
            sample_log.warning("sampling of %s failed (%s); retrying later", week, exc)
            return None
        except Exception:  # a bug must not end the weekly draws; the next pass tries again
            sample_log.exception("sampling of %s failed", week)
            return None
        if report.created:
            sample_log.info(
                "sampled %s: %d case(s) made from %d conversation(s) without hits of %d staff",
                week,
                len(report.created),
                report.candidates,
                report.staff,
            )
        return report
