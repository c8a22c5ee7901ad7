"""The cases (alerts) of one conversation, each with its WeCom history, notes and audit trail.

One state, two surfaces: a manager's click on a WeCom card and a reviewer's action on the page
both land in the alert row and the audit trail, and both show here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, func, select

from monitor.alerts import store
from monitor.alerts.models import AlertMessageLink, OutboxKind, OutboxStatus
from monitor.alerts.policy import AlertKind, AlertStatus
from monitor.archive.audit import AUDIT
from monitor.review.models import CaseNoteRecord, ReviewerRecord
from monitor.review.queue import STATE_LABELS
from rules.models import Severity

__all__ = [
    "ACTION_LABELS",
    "Case",
    "CaseEvent",
    "CaseNote",
    "active_reviewers",
    "load_cases",
]

_LINKS: Table = AlertMessageLink.__table__
_NOTES: Table = CaseNoteRecord.__table__
_REVIEWERS: Table = ReviewerRecord.__table__

ACTION_LABELS = {
    "claim": "认领",
    "assign": "改派",
    "release": "释放",
    "resolve": "已处理",
    "false_positive": "误报",
    "escalate": "升级",
    "reopen": "重新打开",
    "note": "备注",
    "view": "查看",
    "sample": "抽检选中",
    "reveal": "查看客户身份",
}
_KIND_LABELS = {
    AlertKind.CUSTOMER_RISK: "客户风险",
    AlertKind.STAFF_MISCONDUCT: "员工违规",
    AlertKind.SAMPLE: "抽检",
}
_SOURCES = {"card": "企业微信卡片", "web": "审核后台", "cli": "命令行", "system": "系统"}
_OUTBOX_LABELS = {
    OutboxKind.CARD: "提醒卡片",
    OutboxKind.ESCALATION: "升级卡片",
    OutboxKind.ROBOT: "群机器人消息",
    OutboxKind.DIGEST: "汇总消息",
    OutboxKind.CARD_UPDATE: "卡片状态更新",
}
_OUTBOX_STATES = {
    OutboxStatus.PENDING: "待发送",
    OutboxStatus.SENT: "已发送",
    OutboxStatus.FAILED: "发送失败",
    OutboxStatus.SKIPPED: "未发送（频率限制，已并入汇总）",
}


@dataclass(frozen=True, slots=True)
class CaseEvent:
    """One line of a case's history: a WeCom delivery or an action (card click or web)."""

    at: datetime
    text: str
    comment: str = ""


@dataclass(frozen=True, slots=True)
class CaseNote:
    author: str
    at: datetime
    body: str


@dataclass(frozen=True, slots=True)
class Case:
    """One alert of the conversation, as its section of the page shows it."""

    alert_id: str
    kind: AlertKind
    severity: Severity
    status: AlertStatus
    words: tuple[str, ...]
    count: int
    linked_messages: int
    first_at: datetime
    last_at: datetime
    customer_id: str
    customer_name: str
    staff_userid: str
    #: The staff member's display name ("" when the channel could not resolve it).
    staff_name: str
    claimed_by: str
    closed_by: str
    recipients: tuple[str, ...]
    history: list[CaseEvent] = field(default_factory=list)
    notes: list[CaseNote] = field(default_factory=list)

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.status]

    @property
    def closed(self) -> bool:
        return self.status.closed

    @property
    def audience_label(self) -> str:
        return _KIND_LABELS[self.kind]

    @property
    def sampled(self) -> bool:
        """Drawn for review without a hit (抽检)."""
        return self.kind is AlertKind.SAMPLE


def load_cases(conn: Connection, conversation_id: str) -> list[Case]:
    """The conversation's alerts, newest first, with history, notes and linked-message counts."""
    alerts = list(
        conn.execute(
            select(store.ALERTS)
            .where(store.ALERTS.c.conversation_id == conversation_id)
            .order_by(store.ALERTS.c.first_at.desc())
        )
    )
    ids = [row.alert_id for row in alerts]
    if not ids:
        return []
    linked: dict[str, int] = {
        alert_id: int(n)
        for alert_id, n in conn.execute(
            select(_LINKS.c.alert_id, func.count())
            .where(_LINKS.c.alert_id.in_(ids))
            .group_by(_LINKS.c.alert_id)
        )
    }
    history: dict[str, list[CaseEvent]] = defaultdict(list)
    for row in conn.execute(
        select(store.OUTBOX).where(store.OUTBOX.c.alert_id.in_(ids)).order_by(store.OUTBOX.c.id)
    ):
        history[row.alert_id].append(_delivery(row))
    for row in conn.execute(select(AUDIT).where(AUDIT.c.target.in_(ids)).order_by(AUDIT.c.id)):
        history[row.target].append(_action(row))
    notes: dict[str, list[CaseNote]] = defaultdict(list)
    for row in conn.execute(select(_NOTES).where(_NOTES.c.alert_id.in_(ids)).order_by(_NOTES.c.id)):
        notes[row.alert_id].append(CaseNote(row.author, row.at, row.body))
    return [
        Case(
            alert_id=row.alert_id,
            kind=AlertKind(row.kind),
            severity=Severity(row.severity),
            status=AlertStatus(row.status),
            words=tuple(json.loads(row.words or "[]")),
            count=int(row._mapping["count"]),
            linked_messages=linked.get(row.alert_id, 0),
            first_at=row.first_at,
            last_at=row.last_at,
            customer_id=row.customer_id,
            customer_name=row.customer_name,
            staff_userid=row.staff_userid,
            staff_name=row.staff_name,
            claimed_by=row.claimed_by,
            closed_by=row.closed_by,
            recipients=tuple(json.loads(row.recipients or "[]")),
            history=sorted(history[row.alert_id], key=lambda event: event.at),
            notes=notes[row.alert_id],
        )
        for row in alerts
    ]


def active_reviewers(conn: Connection) -> list[str]:
    """Usernames a case can be assigned to (enabled accounts), sorted."""
    return [
        row.username
        for row in conn.execute(
            select(_REVIEWERS.c.username)
            .where(_REVIEWERS.c.disabled.is_(False))
            .order_by(_REVIEWERS.c.username)
        )
    ]


def _delivery(row: Any) -> CaseEvent:
    what = _OUTBOX_LABELS.get(row.kind, row.kind)
    state = _OUTBOX_STATES.get(row.status, row.status)
    people = json.loads(row.delivered_to or row.recipients or "[]")
    to = f"给 {'、'.join(people)}" if people else ""
    if row.kind == OutboxKind.CARD_UPDATE:
        payload = json.loads(row.payload or "{}")
        what = f"{what}：「{payload.get('replace_name', '')}」"
    at = row.sent_at or row.created_at
    return CaseEvent(at, " ".join(part for part in (what, to, state) if part))


def _action(row: Any) -> CaseEvent:
    detail = json.loads(row.detail or "{}")
    action = ACTION_LABELS.get(row.action, row.action)
    source = _SOURCES.get(row.source, row.source)
    text = f"{row.actor} 通过{source}{action}"
    if detail.get("assignee"):
        text += f"给 {detail['assignee']}"
    before, after = detail.get("before"), detail.get("after")
    if before and after and before != after:
        text += f"（{_state(before)} → {_state(after)}）"
    return CaseEvent(row.at, text, str(detail.get("comment", "")))


def _state(value: str) -> str:
    try:
        return STATE_LABELS[AlertStatus(value)]
    except ValueError:
        return value
