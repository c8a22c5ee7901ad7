"""SQL for alerts on one open transaction: load/save ``OpenAlert``, link messages, queue outbox rows.

Every function takes the caller's ``Connection`` so alert writes commit with whatever else the
transaction holds (the archived message, a click's audit entry).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, select, text, update

from monitor.alerts.models import (
    AlertMessageLink,
    AlertRecord,
    OutboxKind,
    OutboxRecord,
    OutboxStatus,
)
from monitor.alerts.policy import AlertKind, AlertStatus, AlertSubject, AuditEntry, OpenAlert
from monitor.archive.audit import AuditEvent, record_audit_event
from monitor.archive.models import HitRecord, MessageRecord
from rules.models import Audience, Hit, Severity

__all__ = [
    "ALERTS",
    "OUTBOX",
    "SentCard",
    "alert_from_row",
    "alert_values",
    "enqueue",
    "insert_alert",
    "latest_alert",
    "latest_alert_row",
    "link_message",
    "load_alert",
    "lock_conversation",
    "message_hits",
    "record_audit",
    "sent_cards",
    "set_cards_sent",
    "stored_subject",
    "update_alert",
    "update_joined",
]

ALERTS: Table = AlertRecord.__table__
OUTBOX: Table = OutboxRecord.__table__
_LINKS: Table = AlertMessageLink.__table__
_HITS: Table = HitRecord.__table__
_MESSAGES: Table = MessageRecord.__table__


_LOCK_NAMESPACE = 7301


def _dump(items: Sequence[str]) -> str:
    return json.dumps(list(items), ensure_ascii=False)


def _load(raw: str | None) -> tuple[str, ...]:
    return tuple(json.loads(raw)) if raw else ()


def alert_values(alert: OpenAlert) -> dict[str, Any]:
    """Column values of ``alert`` (all but the bookkeeping columns the caller owns)."""
    return {
        "alert_id": alert.alert_id,
        "conversation_id": alert.conversation_id,
        "kind": alert.kind.value,
        "severity": int(alert.severity),
        "words": _dump(alert.words),
        "count": alert.count,
        "first_at": alert.first_at,
        "last_at": alert.last_at,
        "latest_text": alert.latest_text,
        "recipients": _dump(alert.recipients),
        "customer_id": alert.customer_id,
        "customer_name": alert.customer_name,
        "staff_userid": alert.staff_userid,
        "staff_name": alert.staff_name,
        "status": alert.status.value,
        "claimed_by": alert.claimed_by,
        "closed_by": alert.closed_by,
        "closed_at": alert.closed_at,
        "escalated": alert.escalated,
        "notified_severity": int(alert.notified_severity),
    }


def alert_from_row(row: Any) -> OpenAlert:
    """An ``OpenAlert`` from a row of the ``alert`` table."""
    return OpenAlert(
        alert_id=row.alert_id,
        conversation_id=row.conversation_id,
        kind=AlertKind(row.kind),
        severity=Severity(row.severity),
        words=_load(row.words),
        count=row.count,
        first_at=row.first_at,
        last_at=row.last_at,
        latest_text=row.latest_text,
        recipients=_load(row.recipients),
        customer_id=row.customer_id,
        customer_name=row.customer_name,
        staff_userid=row.staff_userid,
        staff_name=row.staff_name,
        status=AlertStatus(row.status),
        claimed_by=row.claimed_by,
        closed_by=row.closed_by,
        closed_at=row.closed_at,
        escalated=bool(row.escalated),
        notified_severity=Severity(row.notified_severity),
    )


def lock_conversation(conn: Connection, conversation_id: str) -> None:
    """Serialise alert decisions for one conversation across workers (PostgreSQL).

    Two workers storing messages of one chat at once would otherwise both see "no open alert" and
    open two. SQLite has one writer at a time, so it needs nothing.
    """
    if conn.dialect.name == "postgresql":
        # One bigint key: a namespace in the high bits, the conversation's CRC-32 in the low ones.
        key = (_LOCK_NAMESPACE << 32) | zlib.crc32(conversation_id.encode("utf-8"))
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


_LATEST = (
    select(ALERTS)
    .where(
        ALERTS.c.conversation_id == bindparam("conversation_id"),
        ALERTS.c.kind == bindparam("kind"),
    )
    .order_by(ALERTS.c.last_at.desc())
    .limit(1)
)
# Built once: statements made anew per call cost more Python than the database work itself.
_JOINED_COLUMNS = (
    "severity",
    "words",
    "count",
    "last_at",
    "latest_text",
    "recipients",
    "customer_name",
    "staff_name",
    "notified_severity",
    "latest_message_id",
)
_UPDATE_JOINED = (
    update(ALERTS)
    .where(ALERTS.c.alert_id == bindparam("b_alert_id"))
    .values({name: bindparam(f"b_{name}") for name in _JOINED_COLUMNS})
)


# The statements below take their values as execute() parameters: ``.values(**kw)`` per call
# built a new statement whose cache key SQLAlchemy then had to compute, several times the cost of
# the INSERT itself on the group-commit writer's thread.
_INSERT_ALERT = insert(ALERTS)
_INSERT_LINK = insert(_LINKS)
_INSERT_OUTBOX = insert(OUTBOX).returning(OUTBOX.c.id)
_SET_CARDS_SENT = (
    update(ALERTS)
    .where(ALERTS.c.alert_id == bindparam("b_alert_id"))
    .values(cards_sent=bindparam("b_cards_sent"))
)


def latest_alert_row(conn: Connection, conversation_id: str, kind: AlertKind) -> Any:
    """The row of the conversation's most recent alert of ``kind`` (open or not), or None."""
    return conn.execute(_LATEST, {"conversation_id": conversation_id, "kind": kind.value}).first()


def latest_alert(conn: Connection, conversation_id: str, kind: AlertKind) -> OpenAlert | None:
    """The conversation's most recent alert of ``kind`` (open or not), or None."""
    row = latest_alert_row(conn, conversation_id, kind)
    return alert_from_row(row) if row is not None else None


def update_joined(conn: Connection, alert: OpenAlert, *, latest_message_id: int) -> None:
    """Write what a joining message changes (not the whole row: status etc. stay as stored)."""
    values = alert_values(alert)
    params = {f"b_{name}": values[name] for name in _JOINED_COLUMNS if name in values}
    params["b_latest_message_id"] = latest_message_id
    params["b_alert_id"] = alert.alert_id
    conn.execute(_UPDATE_JOINED, params)


def load_alert(conn: Connection, alert_id: str, *, for_update: bool = False) -> Any:
    """The ``alert`` row (with ``cards_sent`` etc.), or None."""
    stmt = select(ALERTS).where(ALERTS.c.alert_id == alert_id)
    if for_update:
        stmt = stmt.with_for_update()
    return conn.execute(stmt).first()


def insert_alert(conn: Connection, alert: OpenAlert, **extra: Any) -> None:
    """Insert a new alert row."""
    conn.execute(_INSERT_ALERT, {**alert_values(alert), **extra})


def update_alert(conn: Connection, alert: OpenAlert, **extra: Any) -> None:
    """Write ``alert``'s state over its row."""
    values = alert_values(alert)
    del values["alert_id"]
    conn.execute(
        update(ALERTS).where(ALERTS.c.alert_id == alert.alert_id).values(**values, **extra)
    )


def set_cards_sent(conn: Connection, alert_id: str, cards_sent: int) -> None:
    """Record how many cards (first and re-notifications) ``alert_id`` has queued."""
    conn.execute(_SET_CARDS_SENT, {"b_alert_id": alert_id, "b_cards_sent": cards_sent})


def link_message(conn: Connection, alert_id: str, message_id: int) -> None:
    """Record that ``message_id`` raised or joined ``alert_id``."""
    conn.execute(_INSERT_LINK, {"alert_id": alert_id, "message_id": message_id})


def enqueue(
    conn: Connection,
    *,
    kind: str,
    alert_id: str | None,
    recipients: Sequence[str],
    payload: Any,
    now: datetime,
    task_id: str | None = None,
    due: datetime | None = None,
) -> int:
    """Queue one outbox row, due at ``due`` (default: now); returns its id."""
    result = conn.execute(
        _INSERT_OUTBOX,
        {
            "alert_id": alert_id,
            "kind": kind,
            "recipients": _dump(recipients),
            "payload": json.dumps(payload, ensure_ascii=False, sort_keys=True),
            "task_id": task_id,
            "status": OutboxStatus.PENDING,
            "attempts": 0,
            "created_at": now,
            "next_at": due or now,
            "response_code_used": False,
        },
    )
    return int(result.scalar_one())


def record_audit(conn: Connection, entry: AuditEntry, *, source: str, address: str = "") -> None:
    """Append one reviewer/manager action on an alert to the audit trail."""
    record_audit_event(
        conn,
        AuditEvent(
            at=entry.at,
            actor=entry.user,
            source=source,
            action=str(entry.action),
            target=entry.alert_id,
            detail={"before": entry.before.value, "after": entry.after.value, **entry.detail},
            address=address,
        ),
    )


@dataclass(frozen=True, slots=True)
class SentCard:
    """A card of an alert that reached someone: what a click may update."""

    outbox_id: int
    task_id: str
    delivered_to: tuple[str, ...]
    response_code: str | None


def sent_cards(conn: Connection, alert_id: str) -> list[SentCard]:
    """The alert's delivered cards (first alert card, re-notifications, escalations), oldest first."""
    rows = conn.execute(
        select(
            OUTBOX.c.id,
            OUTBOX.c.task_id,
            OUTBOX.c.delivered_to,
            OUTBOX.c.response_code,
            OUTBOX.c.response_code_used,
        )
        .where(
            OUTBOX.c.alert_id == alert_id,
            OUTBOX.c.kind.in_((OutboxKind.CARD, OutboxKind.ESCALATION)),
            OUTBOX.c.status == OutboxStatus.SENT,
            OUTBOX.c.task_id.is_not(None),
        )
        .order_by(OUTBOX.c.id)
    )
    return [
        SentCard(
            r.id,
            r.task_id,
            _load(r.delivered_to),
            None if r.response_code_used else r.response_code,
        )
        for r in rows
    ]


def stored_subject(conn: Connection, row: Any, alert: OpenAlert) -> AlertSubject:
    """The alert's latest message as a card shows it, rebuilt from the archive (escalations)."""
    text, hits = message_hits(conn, row.latest_message_id)
    return AlertSubject(
        conversation_id=alert.conversation_id,
        customer_id=alert.customer_id,
        customer_name=alert.customer_name,
        staff_userid=alert.staff_userid,
        staff_name=alert.staff_name,
        author=Audience.STAFF if alert.kind is AlertKind.STAFF_MISCONDUCT else Audience.CUSTOMER,
        text=text or alert.latest_text,
        hits=hits,
        at=alert.last_at,
    )


def message_hits(conn: Connection, message_id: int | None) -> tuple[str, tuple[Hit, ...]]:
    """An archived message's text and hits (to render a card for an alert later)."""
    if message_id is None:
        return "", ()
    content = conn.execute(
        select(_MESSAGES.c.content).where(_MESSAGES.c.id == message_id)
    ).scalar_one_or_none()
    hits = tuple(
        Hit(r.word, r.span_start, r.span_end, r.rule_group, Severity(r.severity))
        for r in conn.execute(
            select(_HITS).where(_HITS.c.message_id == message_id).order_by(_HITS.c.span_start)
        )
    )
    return content or "", hits
