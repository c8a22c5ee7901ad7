"""The review queue: flagged conversations' cases, filtered, counted per state, paged.

A case is one alert (``monitor.alerts``). Open cases (待处理, 已认领, 已升级) come first by default,
most severe and then oldest first, so the case that has waited longest at the highest level is
always on top. Pure SQL reads on a Connection; the web layer runs them in a thread.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, select, true

from monitor.alerts import store
from monitor.alerts.policy import AlertKind, AlertStatus
from monitor.review.params import date_param, day_range, int_param, link_query, text_param
from rules.models import Severity

__all__ = [
    "AUDIENCES",
    "KIND_LABELS",
    "OPEN_STATES",
    "STATE_LABELS",
    "QueueFilter",
    "QueuePage",
    "QueueRow",
    "load_queue",
]

ALERTS = store.ALERTS

OPEN_STATES = (AlertStatus.OPEN, AlertStatus.CLAIMED, AlertStatus.ESCALATED)
"""States a reviewer still has to work on."""

STATE_LABELS = {
    AlertStatus.OPEN: "待处理",
    AlertStatus.CLAIMED: "已认领",
    AlertStatus.ESCALATED: "已升级",
    AlertStatus.RESOLVED: "已处理",
    AlertStatus.FALSE_POSITIVE: "误报",
}

AUDIENCES = {
    "customer": AlertKind.CUSTOMER_RISK,
    "staff": AlertKind.STAFF_MISCONDUCT,
    "sample": AlertKind.SAMPLE,
}
"""The queue's audience filter: whose words raised the case, or a sampled case (抽检)."""

KIND_LABELS = {
    AlertKind.CUSTOMER_RISK: "客户",
    AlertKind.STAFF_MISCONDUCT: "员工",
    AlertKind.SAMPLE: "抽检",
}


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """What the queue shows; every field empty = the open cases."""

    state: str = "active"
    """``active`` (未结案: 待处理+已认领+已升级), ``all``, or one :class:`AlertStatus` value."""
    severity: int | None = None
    """At least this severity (1..4)."""
    exact_severity: int | None = None
    """Exactly this severity (1..4): the dashboard's links to one severity's cases."""
    audience: str = ""
    """``customer``, ``staff`` or ``sample`` (抽检: drawn without a hit)."""
    word: str = ""
    staff: str = ""
    assignee: str = ""
    """Claimed by this reviewer; ``-`` = claimed by nobody."""
    since: date | None = None
    until: date | None = None
    """First hit on or after ``since`` and on or before ``until`` (UTC dates)."""
    page: int = 1

    @classmethod
    def from_query(cls, query: Any) -> QueueFilter:
        """Parse the queue page's query string; bad values are ignored, never an error page."""
        state = str(query.get("state", "active"))
        if state not in ("active", "all", *(s.value for s in AlertStatus)):
            state = "active"
        audience = str(query.get("audience", ""))
        return cls(
            state=state,
            severity=int_param(query.get("severity"), 1, 4),
            exact_severity=int_param(query.get("exact_severity"), 1, 4),
            audience=audience if audience in AUDIENCES else "",
            word=text_param(query.get("word"), 64),
            staff=text_param(query.get("staff"), 128),
            assignee=text_param(query.get("assignee"), 64),
            since=date_param(query.get("since")),
            until=date_param(query.get("until")),
            page=int_param(query.get("page"), 1, 1_000_000) or 1,
        )

    def query(self, **changes: Any) -> dict[str, str]:
        """The non-empty fields as query parameters (for links that keep the filters)."""
        values = {
            "state": self.state,
            "severity": "" if self.severity is None else str(self.severity),
            "exact_severity": "" if self.exact_severity is None else str(self.exact_severity),
            "audience": self.audience,
            "word": self.word,
            "staff": self.staff,
            "assignee": self.assignee,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "page": "" if self.page == 1 else str(self.page),
        }
        return link_query(values, changes)


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One case in the queue."""

    alert_id: str
    conversation_id: str
    kind: AlertKind
    customer_id: str
    customer_name: str
    staff_userid: str
    staff_name: str
    words: tuple[str, ...]
    severity: Severity
    status: AlertStatus
    claimed_by: str
    count: int
    first_at: datetime
    last_at: datetime

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.status]

    @property
    def audience_label(self) -> str:
        return KIND_LABELS[self.kind]

    @property
    def sampled(self) -> bool:
        """Drawn for review without a hit (抽检)."""
        return self.kind is AlertKind.SAMPLE


@dataclass(frozen=True, slots=True)
class QueuePage:
    """One page of the queue, with the totals the filters give."""

    rows: list[QueueRow]
    total: int
    """Cases matching the filters (all pages)."""
    page: int
    pages: int
    counts: dict[AlertStatus, int] = field(default_factory=dict)
    """Cases per state under every filter but the state one."""

    @property
    def active(self) -> int:
        """Cases not closed yet (under every filter but the state one)."""
        return sum(self.counts.get(status, 0) for status in OPEN_STATES)


def load_queue(conn: Connection, wanted: QueueFilter, *, page_size: int) -> QueuePage:
    """The page of cases ``wanted`` asks for."""
    others = _conditions(wanted)
    counts = {status: 0 for status in AlertStatus}
    for status, n in conn.execute(
        select(ALERTS.c.status, func.count()).where(others).group_by(ALERTS.c.status)
    ):
        if status in counts:
            counts[AlertStatus(status)] = int(n)
    where = and_(others, _state_condition(wanted.state))
    total = int(conn.execute(select(func.count()).select_from(ALERTS).where(where)).scalar_one())
    pages = max(1, math.ceil(total / page_size))
    page = min(wanted.page, pages)
    rows = conn.execute(
        select(ALERTS)
        .where(where)
        .order_by(ALERTS.c.severity.desc(), ALERTS.c.first_at, ALERTS.c.alert_id)
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    return QueuePage([_row(r) for r in rows], total, page, pages, counts)


def _conditions(wanted: QueueFilter) -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = []
    if wanted.severity is not None:
        parts.append(ALERTS.c.severity >= wanted.severity)
    if wanted.exact_severity is not None:
        parts.append(ALERTS.c.severity == wanted.exact_severity)
    if wanted.audience:
        parts.append(ALERTS.c.kind == AUDIENCES[wanted.audience].value)
    if wanted.word:
        # words is a JSON list: match one whole element, never a fragment of another word.
        element = json.dumps(wanted.word, ensure_ascii=False)
        parts.append(ALERTS.c.words.contains(element, autoescape=True))
    if wanted.staff:
        parts.append(ALERTS.c.staff_userid == wanted.staff)
    if wanted.assignee:
        parts.append(ALERTS.c.claimed_by == ("" if wanted.assignee == "-" else wanted.assignee))
    parts.extend(day_range(ALERTS.c.first_at, wanted.since, wanted.until))
    return and_(true(), *parts)


def _state_condition(state: str) -> ColumnElement[bool]:
    if state == "all":
        return true()
    if state == "active":
        return ALERTS.c.status.in_([s.value for s in OPEN_STATES])
    return ALERTS.c.status == state


def _row(r: Any) -> QueueRow:
    return QueueRow(
        alert_id=r.alert_id,
        conversation_id=r.conversation_id,
        kind=AlertKind(r.kind),
        customer_id=r.customer_id,
        customer_name=r.customer_name,
        staff_userid=r.staff_userid,
        staff_name=r.staff_name,
        words=tuple(json.loads(r.words or "[]")),
        severity=Severity(r.severity),
        status=AlertStatus(r.status),
        claimed_by=r.claimed_by,
        count=r.count,
        first_at=r.first_at,
        last_at=r.last_at,
    )
