"""The write side of the review web: actions on a case, notes, and page views, each audited.

Each function is one unit of work for the group-commit writer (``writer.run(lambda conn: ...)``):
the alert row is locked, the pure transition (:mod:`monitor.review.transitions`) decides, and the
new state, its audit row, the WeCom card updates and an escalation card commit together. A refusal
is returned, not raised: a raising unit would make the writer re-run its whole batch one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Table, insert, select

from monitor.alerts import store
from monitor.alerts.intake import CardStyle, queue_card, queue_card_updates
from monitor.archive.audit import AuditEvent, record_audit_event
from monitor.review.models import CaseNoteRecord, ReviewerRecord
from monitor.review.transitions import (
    COMMENT_MAX,
    ActionRefused,
    CaseAction,
    Transition,
    apply_action,
)

__all__ = ["ActionRequest", "add_note", "record_view", "run_action"]

_NOTES: Table = CaseNoteRecord.__table__
_REVIEWERS: Table = ReviewerRecord.__table__


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """A reviewer's action as the web hands it over."""

    alert_id: str
    action: CaseAction
    actor: str
    is_admin: bool
    now: datetime
    comment: str = ""
    assignee: str = ""
    address: str = ""


def run_action(
    conn: Connection,
    request: ActionRequest,
    *,
    card_style: CardStyle,
    escalate_to: Sequence[str],
) -> Transition | ActionRefused:
    """Apply one action on ``conn``'s transaction (see the module docstring)."""
    row = store.load_alert(conn, request.alert_id, for_update=True)
    if row is None:
        return ActionRefused("not_found", "案件不存在")
    alert = store.alert_from_row(row)
    if request.action is CaseAction.ASSIGN and not _is_active_reviewer(conn, request.assignee):
        return ActionRefused("unknown_assignee", "只能改派给启用中的审核账号")
    try:
        transition = apply_action(
            alert,
            request.action,
            actor=request.actor,
            now=request.now,
            comment=request.comment,
            assignee=request.assignee,
            is_admin=request.is_admin,
        )
    except ActionRefused as refused:
        return refused
    store.update_alert(conn, transition.alert)
    store.record_audit(conn, transition.audit, source="web", address=request.address)
    if transition.card_text:
        queue_card_updates(conn, transition.alert, transition.card_text, request.now)
    if transition.escalate:
        recipients = tuple(escalate_to) or transition.alert.recipients
        queue_card(
            conn,
            row_cards_sent=row.cards_sent,
            alert=transition.alert,
            subject=store.stored_subject(conn, row, transition.alert),
            recipients=recipients,
            style=card_style,
            now=request.now,
            escalation_waited_s=int((request.now - alert.first_at).total_seconds()),
            escalation_reason=f"审核员 {request.actor} 升级：{request.comment.strip()}",
        )
    return transition


def add_note(
    conn: Connection, alert_id: str, *, author: str, body: str, now: datetime, address: str = ""
) -> ActionRefused | None:
    """Add a note to a case (audited); a refusal for an empty, too long or unknown case."""
    body = body.strip()
    if not body:
        return ActionRefused("comment_required", "备注不能为空")
    if len(body) > COMMENT_MAX:
        return ActionRefused("comment_too_long", f"备注最多 {COMMENT_MAX} 字")
    if store.load_alert(conn, alert_id) is None:
        return ActionRefused("not_found", "案件不存在")
    conn.execute(insert(_NOTES).values(alert_id=alert_id, author=author, at=now, body=body))
    record_audit_event(
        conn,
        AuditEvent(
            at=now,
            actor=author,
            source="web",
            action="note",
            target=alert_id,
            detail={"comment": body},
            address=address,
        ),
    )
    return None


def record_view(
    conn: Connection, conversation_id: str, *, actor: str, now: datetime, address: str = ""
) -> None:
    """Audit that ``actor`` opened a conversation's page."""
    record_audit_event(
        conn,
        AuditEvent(
            at=now,
            actor=actor,
            source="web",
            action="view",
            target=conversation_id,
            address=address,
        ),
    )


def _is_active_reviewer(conn: Connection, username: str) -> bool:
    found = conn.execute(
        select(_REVIEWERS.c.disabled).where(_REVIEWERS.c.username == username.strip())
    ).first()
    return found is not None and not found.disabled
