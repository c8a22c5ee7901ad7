"""The outbox worker's transactions: claim due rows, record outcomes, escalate unclaimed alerts.

Each function runs on the group-commit writer thread (``writer.run(partial(fn, ...))``). Claims use
``FOR UPDATE SKIP LOCKED`` plus a lease on PostgreSQL, so N workers never send one row twice; on
SQLite the single writer serialises them. A lease that runs out (its worker died mid-send) makes the
row due again, and ``enable_duplicate_check`` keeps WeCom from showing a resent card twice.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, and_, delete, func, insert, or_, select, update

from monitor.alerts import store
from monitor.alerts.cards import AlertWording, build_digest
from monitor.alerts.intake import CardStyle, queue_card
from monitor.alerts.models import (
    HeldAlertRecord,
    OutboxKind,
    OutboxStatus,
    RecipientSendRecord,
)
from monitor.alerts.policy import AlertKind, AlertPolicy, AlertStatus

__all__ = [
    "ROBOT_RECIPIENT",
    "Claimed",
    "Outcome",
    "claim_due",
    "count_pending",
    "escalate_due",
    "finish",
]

_SENDS: Table = RecipientSendRecord.__table__
_HELD: Table = HeldAlertRecord.__table__
OUTBOX = store.OUTBOX

ROBOT_RECIPIENT = "@robot"
"""Rate-limit key of the team-room robot (WeCom allows it 20 messages a minute)."""


@dataclass(frozen=True, slots=True)
class Claimed:
    """One leased outbox row, ready to send."""

    id: int
    kind: str
    alert_id: str | None
    recipients: tuple[str, ...]
    payload: dict[str, Any]
    task_id: str | None
    attempts: int
    created_at: datetime


@dataclass(slots=True)
class Outcome:
    """What happened to one claimed row; ``finish`` writes it."""

    row: Claimed
    status: str
    delivered_to: tuple[str, ...] = ()
    #: Recipients the rate limit held back, each with the time their digest may go.
    held: tuple[tuple[str, datetime], ...] = ()
    response_code: str | None = None
    error: str | None = None
    #: For a retry or a rate-limited digest: when to try again.
    next_at: datetime | None = None
    count_attempt: bool = True
    #: Digest rows only: the alerts it listed (marked as sent with it).
    extra: dict[str, Any] = field(default_factory=dict)


def claim_due(
    conn: Connection,
    now: datetime,
    owner: str,
    limit: int,
    lease_s: float,
    *,
    wording: AlertWording | None = None,
) -> tuple[list[Claimed], dict[str, list[datetime]]]:
    """Lease up to ``limit`` due rows; also each recipient's sends in the last hour."""
    rows = conn.execute(
        select(OUTBOX)
        .where(
            OUTBOX.c.status == OutboxStatus.PENDING,
            OUTBOX.c.next_at <= now,
            or_(OUTBOX.c.lease_until.is_(None), OUTBOX.c.lease_until < now),
        )
        .order_by(OUTBOX.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return [], {}
    conn.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id.in_([r.id for r in rows]))
        .values(lease_until=now + timedelta(seconds=lease_s), lease_owner=owner)
    )
    claimed = [
        Claimed(
            r.id,
            r.kind,
            r.alert_id,
            tuple(json.loads(r.recipients)),
            json.loads(r.payload),
            r.task_id,
            r.attempts,
            r.created_at,
        )
        for r in rows
    ]
    for index, row in enumerate(claimed):
        if row.kind == OutboxKind.DIGEST:
            claimed[index] = _render_digest(conn, row, wording)
    keys = {r for row in claimed for r in row.recipients} | {ROBOT_RECIPIENT}
    recent: dict[str, list[datetime]] = defaultdict(list)
    for recipient, sent_at in conn.execute(
        select(_SENDS.c.recipient, _SENDS.c.sent_at).where(
            _SENDS.c.recipient.in_(sorted(keys)), _SENDS.c.sent_at > now - timedelta(hours=1)
        )
    ):
        recent[recipient].append(sent_at)
    return claimed, dict(recent)


def _render_digest(conn: Connection, row: Claimed, wording: AlertWording | None) -> Claimed:
    # Rendered at send time: the digest lists every alert held for this recipient so far, in its
    # current state (count, words), however late it was held.
    held = conn.execute(
        select(store.ALERTS)
        .join(_HELD, _HELD.c.alert_id == store.ALERTS.c.alert_id)
        .where(_HELD.c.digest_id == row.id)
        .order_by(_HELD.c.held_at)
    ).all()
    alerts = list({a.alert_id: store.alert_from_row(a) for a in held}.values())
    review = str(row.payload.get("review_url", ""))
    text = build_digest(alerts, review_url=review, wording=wording) if alerts else ""
    return Claimed(
        row.id,
        row.kind,
        row.alert_id,
        row.recipients,
        {**row.payload, "content": text},
        row.task_id,
        row.attempts,
        row.created_at,
    )


def finish(conn: Connection, outcomes: Sequence[Outcome], now: datetime, review_url: str) -> None:
    """Write outcomes: sent/failed/retry, send history, held alerts and their digests."""
    for out in outcomes:
        values: dict[str, Any] = {"status": out.status, "lease_until": None, "lease_owner": None}
        if out.count_attempt:
            values["attempts"] = out.row.attempts + 1
        if out.status in (OutboxStatus.SENT, OutboxStatus.SKIPPED):
            values |= {
                "sent_at": now,
                "delivered_to": json.dumps(list(out.delivered_to), ensure_ascii=False),
                "response_code": out.response_code,
                "last_error": out.error,
            }
        elif out.status == OutboxStatus.FAILED:
            values["last_error"] = out.error
        else:
            values |= {"next_at": out.next_at or now, "last_error": out.error}
        conn.execute(update(OUTBOX).where(OUTBOX.c.id == out.row.id).values(**values))
        sends = [
            {"recipient": r, "sent_at": now, "outbox_id": out.row.id} for r in out.delivered_to
        ]
        if out.row.kind == OutboxKind.ROBOT and out.status == OutboxStatus.SENT:
            sends = [{"recipient": ROBOT_RECIPIENT, "sent_at": now, "outbox_id": out.row.id}]
        if sends and out.row.kind != OutboxKind.CARD_UPDATE:
            conn.execute(insert(_SENDS), sends)
        for recipient, slot in out.held:
            _hold(conn, recipient=recipient, slot=slot, out=out, now=now, review_url=review_url)
    # History older than the longest rate-limit window is never read again.
    conn.execute(delete(_SENDS).where(_SENDS.c.sent_at < now - timedelta(hours=2)))


def _hold(
    conn: Connection,
    *,
    recipient: str,
    slot: datetime,
    out: Outcome,
    now: datetime,
    review_url: str,
) -> None:
    if out.row.alert_id is None:
        return
    digest_id = conn.execute(
        select(OUTBOX.c.id).where(
            OUTBOX.c.kind == OutboxKind.DIGEST,
            OUTBOX.c.status == OutboxStatus.PENDING,
            OUTBOX.c.recipients == json.dumps([recipient], ensure_ascii=False),
            # A digest being sent right now was rendered already: start the next one.
            or_(OUTBOX.c.lease_until.is_(None), OUTBOX.c.lease_until < now),
        )
    ).scalar()
    if digest_id is None:
        digest_id = store.enqueue(
            conn,
            kind=OutboxKind.DIGEST,
            alert_id=None,
            recipients=(recipient,),
            payload={"review_url": review_url},
            now=now,
            due=slot,
        )
    conn.execute(
        insert(_HELD).values(
            recipient=recipient, alert_id=out.row.alert_id, held_at=now, digest_id=digest_id
        )
    )


def count_pending(conn: Connection) -> int:
    """Rows waiting to be sent (for the pending gauge)."""
    return int(
        conn.execute(
            select(func.count()).select_from(OUTBOX).where(OUTBOX.c.status == OutboxStatus.PENDING)
        ).scalar_one()
    )


def escalate_due(
    conn: Connection, now: datetime, policy: AlertPolicy, style: CardStyle, limit: int = 50
) -> int:
    """Escalate open alerts nobody claimed in time, once each; returns how many."""
    after = policy.config.escalate_after_s
    if after <= 0 or not policy.config.escalate_to:
        return 0
    rows = conn.execute(
        select(store.ALERTS)
        .where(
            and_(
                store.ALERTS.c.status == AlertStatus.OPEN.value,
                store.ALERTS.c.escalated.is_(False),
                # Sampled cases are never escalated by time (their ``limit`` slots are real alerts').
                store.ALERTS.c.kind != AlertKind.SAMPLE.value,
                store.ALERTS.c.first_at <= now - timedelta(seconds=after),
            )
        )
        .order_by(store.ALERTS.c.first_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    by_id = {r.alert_id: r for r in rows}
    done = 0
    for esc in policy.due_escalations([store.alert_from_row(r) for r in rows], now):
        row = by_id[esc.alert.alert_id]
        alert = esc.alert
        subject = store.stored_subject(conn, row, alert)
        store.update_alert(conn, alert)
        queue_card(
            conn,
            row_cards_sent=row.cards_sent,
            alert=alert,
            subject=subject,
            recipients=esc.recipients,
            style=style,
            now=now,
            escalation_waited_s=esc.waited_s,
        )
        done += 1
    return done
