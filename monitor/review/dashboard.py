"""The review dashboard's figures: aggregation queries over the cases (alerts) of a date range.

Pure SQL reads on a Connection (the web layer runs them in a thread), grouped in the database so
a large archive never travels to Python; the same answers on SQLite and PostgreSQL. A case
belongs to the UTC day of its first hit (``first_at``), as in the queue's date filter, so every
figure links to a queue page listing exactly the cases it counts.

- :attr:`Dashboard.per_day`: cases per day and severity.
- :attr:`Dashboard.words`: the words with the most hits (a case's hits count for each of its words).
- :attr:`Dashboard.staff`: the staff members whose own messages raised the most hits (staff
  misconduct cases), with their display names when the channel knew them.
- :attr:`Dashboard.resolve_times`: median and 90th percentile of ``closed_at - first_at`` over
  the closed cases (已处理 and 误报), per severity and overall. Linear interpolation between the
  two nearest ranks (PostgreSQL's ``percentile_cont``), computed from the two rows around each
  rank, picked with window functions: only those rows leave the database.
- :attr:`Dashboard.false_positives`: per word, closed cases and those closed as 误报, for words
  with at least ``fp_min_closed`` closed cases (fewer say nothing).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    and_,
    case,
    cast,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB

from monitor.alerts import store
from monitor.alerts.policy import AlertKind, AlertStatus
from monitor.review.params import date_param, day_range, int_param
from rules.models import Severity

__all__ = [
    "CLOSED_STATES",
    "RANGE_CHOICES",
    "Dashboard",
    "DashboardRange",
    "DayCount",
    "FalsePositiveRate",
    "ResolveTime",
    "StaffCount",
    "WordCount",
    "day_counts",
    "load_dashboard",
    "utc_today",
]

ALERTS = store.ALERTS

CLOSED_STATES = (AlertStatus.RESOLVED, AlertStatus.FALSE_POSITIVE)
RANGE_CHOICES = (7, 30, 90)
"""The range picker's spans, in days; 30 is the default."""
MAX_DAYS = 366
"""A longer since/until range is cut to its last ``MAX_DAYS`` days."""


@dataclass(frozen=True, slots=True)
class DashboardRange:
    """The UTC days the dashboard covers, both ends included."""

    since: date
    until: date
    days: int | None = None
    """The picker's span (7, 30, 90) when the range is one of them, else None (dates given)."""

    @property
    def length(self) -> int:
        return (self.until - self.since).days + 1

    def each_day(self) -> list[date]:
        return [self.since + timedelta(days=i) for i in range(self.length)]

    @classmethod
    def from_query(cls, query: Any, today: date) -> DashboardRange:
        """``?days=7|30|90`` (default 30) ending today, or ``?since=&until=`` (either may be
        left out: until defaults to today, since to 30 days before until); bad values ignored."""
        since, until = date_param(query.get("since")), date_param(query.get("until"))
        if since is None and until is None:
            days = int_param(query.get("days"), 1, MAX_DAYS)
            days = days if days in RANGE_CHOICES else 30
            return cls(today - timedelta(days=days - 1), today, days)
        until = until or today
        since = since or until - timedelta(days=29)
        if since > until:
            since, until = until, since
        since = max(since, until - timedelta(days=MAX_DAYS - 1))
        return cls(since, until)


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date
    severity: Severity
    cases: int


@dataclass(frozen=True, slots=True)
class WordCount:
    word: str
    hits: int
    """Hits of the cases holding the word (a case's ``count``)."""
    cases: int


@dataclass(frozen=True, slots=True)
class StaffCount:
    userid: str
    name: str
    """The display name when one of the cases carries it, else ""."""
    hits: int
    cases: int


@dataclass(frozen=True, slots=True)
class ResolveTime:
    severity: Severity | None
    """None: all severities."""
    closed: int
    median_s: float
    p90_s: float


@dataclass(frozen=True, slots=True)
class FalsePositiveRate:
    word: str
    closed: int
    false_positive: int

    @property
    def rate(self) -> float:
        return self.false_positive / self.closed if self.closed else 0.0


@dataclass(frozen=True, slots=True)
class Dashboard:
    range: DashboardRange
    total: int
    """Cases in the range."""
    per_day: list[DayCount]
    words: list[WordCount]
    staff: list[StaffCount]
    resolve_times: list[ResolveTime]
    """Per severity present, most severe first, then the overall one (severity None) last."""
    false_positives: list[FalsePositiveRate]
    fp_min_closed: int


def load_dashboard(
    conn: Connection, wanted: DashboardRange, *, top: int = 10, fp_min_closed: int = 5
) -> Dashboard:
    """The dashboard's figures for the cases first hit within ``wanted``."""
    in_range = and_(true(), *day_range(ALERTS.c.first_at, wanted.since, wanted.until))
    total = int(conn.execute(select(func.count()).select_from(ALERTS).where(in_range)).scalar_one())
    if not total:
        return Dashboard(wanted, 0, [], [], [], [], [], fp_min_closed)
    return Dashboard(
        range=wanted,
        total=total,
        per_day=_per_day(conn, in_range),
        words=_words(conn, in_range, top),
        staff=_staff(conn, in_range, top),
        resolve_times=_resolve_times(conn, in_range),
        false_positives=_false_positives(conn, in_range, fp_min_closed),
        fp_min_closed=fp_min_closed,
    )


def _utc_day(conn: Connection) -> ColumnElement[Any]:
    """``first_at``'s UTC day as ``YYYY-MM-DD`` text."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", ALERTS.c.first_at), "YYYY-MM-DD")
    # SQLite holds naive UTC text, "YYYY-MM-DD HH:MM:SS.ffffff".
    return func.date(ALERTS.c.first_at)


def _per_day(conn: Connection, in_range: ColumnElement[bool]) -> list[DayCount]:
    day = _utc_day(conn).label("day")
    rows = conn.execute(
        select(day, ALERTS.c.severity, func.count())
        .where(in_range)
        .group_by(day, ALERTS.c.severity)
        .order_by(day, ALERTS.c.severity)
    )
    return [DayCount(date.fromisoformat(str(d)), Severity(s), int(n)) for d, s, n in rows]


def _word_rows(conn: Connection) -> Any:
    """One row per (case, word): a table-valued function over the JSON list in ``words``."""
    if conn.dialect.name == "postgresql":
        return func.jsonb_array_elements_text(cast(ALERTS.c.words, JSONB)).table_valued("value")
    return func.json_each(ALERTS.c.words).table_valued("value")


def _words(conn: Connection, in_range: ColumnElement[bool], top: int) -> list[WordCount]:
    word = _word_rows(conn).alias("w")
    hits = func.sum(ALERTS.c.count)
    rows = conn.execute(
        select(word.c.value, hits, func.count())
        .select_from(ALERTS.join(word, true()))
        .where(in_range)
        .group_by(word.c.value)
        .order_by(hits.desc(), word.c.value)
        .limit(top)
    )
    return [WordCount(str(w), int(h), int(n)) for w, h, n in rows]


def _staff(conn: Connection, in_range: ColumnElement[bool], top: int) -> list[StaffCount]:
    hits = func.sum(ALERTS.c.count)
    rows = conn.execute(
        select(ALERTS.c.staff_userid, func.max(ALERTS.c.staff_name), hits, func.count())
        .where(
            in_range,
            ALERTS.c.kind == AlertKind.STAFF_MISCONDUCT.value,
            ALERTS.c.staff_userid != "",
        )
        .group_by(ALERTS.c.staff_userid)
        .order_by(hits.desc(), ALERTS.c.staff_userid)
        .limit(top)
    )
    return [StaffCount(str(u), str(name or ""), int(h), int(n)) for u, name, h, n in rows]


def _duration_s(conn: Connection) -> ColumnElement[Any]:
    """``closed_at - first_at`` in seconds."""
    if conn.dialect.name == "postgresql":
        return cast(func.extract("epoch", ALERTS.c.closed_at - ALERTS.c.first_at), Float)
    return (func.julianday(ALERTS.c.closed_at) - func.julianday(ALERTS.c.first_at)) * 86400.0


# Percentiles by linear interpolation: position (n - 1) * p between ranks lo and lo + 1 (0-based).
_PERCENTILES = {"median": (1, 2), "p90": (9, 10)}
"""p as a fraction num/den, so the ranks are integer arithmetic in SQL on both backends."""


def _resolve_times(conn: Connection, in_range: ColumnElement[bool]) -> list[ResolveTime]:
    closed = and_(
        in_range,
        ALERTS.c.status.in_([s.value for s in CLOSED_STATES]),
        ALERTS.c.closed_at.is_not(None),
    )
    found: list[ResolveTime] = []
    by_severity = _percentile_rows(conn, closed, ALERTS.c.severity)
    for severity in sorted(by_severity, reverse=True):
        found.append(_resolve_time(Severity(int(severity)), by_severity[severity]))
    overall = _percentile_rows(conn, closed, literal(0))
    if overall:
        found.append(_resolve_time(None, overall[0]))
    return found


def _percentile_rows(
    conn: Connection, where: ColumnElement[bool], group: ColumnElement[Any]
) -> dict[Any, tuple[int, dict[int, float]]]:
    """Per group: its size n and the durations at the ranks the percentiles need."""
    duration = _duration_s(conn)
    inner = (
        select(
            group.label("g"),
            duration.label("d"),
            (func.row_number().over(partition_by=group, order_by=duration) - 1).label("rn"),
            func.count().over(partition_by=group).label("n"),
        )
        .where(where)
        .subquery()
    )
    n_1 = inner.c.n - 1
    ranks = []
    for num, den in _PERCENTILES.values():
        ranks += [n_1 * num // den, (n_1 * num + den - 1) // den]
    rows = conn.execute(
        select(inner.c.g, inner.c.n, inner.c.rn, inner.c.d).where(inner.c.rn.in_(ranks))
    )
    groups: dict[Any, tuple[int, dict[int, float]]] = {}
    for g, n, rn, d in rows:
        groups.setdefault(g, (int(n), {}))[1][int(rn)] = float(d)
    return groups


def _resolve_time(severity: Severity | None, group: tuple[int, dict[int, float]]) -> ResolveTime:
    n, at = group
    values = [_interpolate(n, at, num, den) for num, den in _PERCENTILES.values()]
    return ResolveTime(severity, n, values[0], values[1])


def _interpolate(n: int, at: dict[int, float], num: int, den: int) -> float:
    lo, rest = divmod((n - 1) * num, den)
    low = at[lo]
    if not rest:
        return low
    return low + (at[lo + 1] - low) * rest / den


def _false_positives(
    conn: Connection, in_range: ColumnElement[bool], min_closed: int
) -> list[FalsePositiveRate]:
    word = _word_rows(conn).alias("w")
    closed = func.count()
    fp = func.sum(case((ALERTS.c.status == AlertStatus.FALSE_POSITIVE.value, 1), else_=0))
    rows = conn.execute(
        select(word.c.value, closed, fp)
        .select_from(ALERTS.join(word, true()))
        .where(in_range, ALERTS.c.status.in_([s.value for s in CLOSED_STATES]))
        .group_by(word.c.value)
        .having(closed >= min_closed)
    )
    rates = [FalsePositiveRate(str(w), int(c), int(f or 0)) for w, c, f in rows]
    return sorted(rates, key=lambda r: (-r.rate, -r.closed, r.word))


def day_counts(per_day: Iterable[DayCount]) -> dict[date, dict[Severity, int]]:
    """``per_day`` as day -> severity -> cases."""
    table: dict[date, dict[Severity, int]] = {}
    for row in per_day:
        table.setdefault(row.day, {})[row.severity] = row.cases
    return table


def utc_today(now: datetime) -> date:
    """The UTC day of ``now`` (an aware datetime)."""
    return now.astimezone(UTC).date()
