"""Legal holds: setting, releasing and listing them, and what they keep from a purge.

:func:`set_hold` and :func:`release_hold` are units of work for the group-commit writer: the
change and its audit row (``hold_set`` / ``hold_release``) commit together. :func:`load_hold_set`
reads what a retention purge must keep, as a :class:`HoldSet`; :meth:`HoldSet.keeps` is pure.

What is kept (a message is kept when any of these holds):

- **conversation hold**: every message of that conversation (``message.conversation_id``);
- **staff hold** on userid U: every message U wrote or received (``from_user`` is U, or U is one
  of the comma-separated ``to_user`` ids: msgaudit 1:1 chats, app replies), and every message of
  a conversation U took part in: one where U wrote a message (kf servicer, msgaudit staff, app
  member), one whose alert names U (``alert.staff_userid``), and U's own app conversation
  (``app:U``);
- **open case** (implicit hold): every message of a conversation that has an alert not yet
  resolved or dismissed, so no case loses its evidence while someone works on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Table, insert, select, update

from monitor.alerts.models import AlertRecord
from monitor.alerts.policy import AlertStatus
from monitor.archive.audit import AuditEvent, record_audit_event
from monitor.archive.hold_models import HoldScope, LegalHoldRecord
from monitor.archive.models import MessageRecord

__all__ = [
    "HOLDS",
    "REASON_MAX",
    "VALUE_MAX",
    "Hold",
    "HoldError",
    "HoldSet",
    "list_holds",
    "load_hold_set",
    "release_hold",
    "set_hold",
]

HOLDS: Table = LegalHoldRecord.__table__
_ALERTS: Table = AlertRecord.__table__
_MESSAGES: Table = MessageRecord.__table__
_CLOSED = (AlertStatus.RESOLVED.value, AlertStatus.FALSE_POSITIVE.value)

REASON_MAX = 2000
"""Longest reason (set or release) kept."""
VALUE_MAX = 512
"""Longest conversation id or userid a hold may name (the column's length)."""


class HoldError(ValueError):
    """A hold request is refused; ``message`` is the Chinese text to show, ``code`` for tests."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Hold:
    """One hold as the pages and the CLI show it."""

    id: int
    scope: str
    value: str
    reason: str
    created_by: str
    created_at: datetime
    released_by: str | None
    released_at: datetime | None
    release_reason: str | None

    @property
    def active(self) -> bool:
        return self.released_at is None

    @property
    def scope_label(self) -> str:
        return "会话" if self.scope == HoldScope.CONVERSATION else "员工"


@dataclass(frozen=True, slots=True)
class HoldSet:
    """What a purge keeps: held conversations (explicit, of held staff, with open cases) and
    held staff userids."""

    conversations: frozenset[str]
    staff: frozenset[str]

    def keeps(self, conversation_id: str | None, from_user: str, to_user: str) -> bool:
        """Whether a message with these parties is kept (see the module docstring)."""
        if conversation_id is not None and conversation_id in self.conversations:
            return True
        if not self.staff:
            return False
        return from_user in self.staff or any(u in self.staff for u in to_user.split(","))


def _clean(text: str, what: str, limit: int) -> str:
    value = text.strip()
    if not value:
        raise HoldError(f"{what}_required", "请填写原因。" if what == "reason" else "请填写对象。")
    if len(value) > limit:
        raise HoldError(f"{what}_too_long", f"最多 {limit} 个字符。")
    return value


def set_hold(
    conn: Connection,
    *,
    scope: str,
    value: str,
    reason: str,
    actor: str,
    now: datetime,
    source: str = "web",
    address: str = "",
) -> int:
    """Put a conversation or a staff member under hold (audited); returns the hold's id.

    Raises:
        HoldError: an unknown scope, an empty value or reason, or an active hold on it already.
    """
    if scope not in HoldScope.ALL:
        raise HoldError("scope", "保留范围无效。")
    value = _clean(value, "value", VALUE_MAX)
    reason = _clean(reason, "reason", REASON_MAX)
    active = conn.execute(
        select(HOLDS.c.id).where(
            HOLDS.c.scope == scope, HOLDS.c.value == value, HOLDS.c.released_at.is_(None)
        )
    ).first()
    if active is not None:
        raise HoldError("exists", "该对象已处于保留状态。")
    hold_id = int(
        conn.execute(
            insert(HOLDS)
            .values(scope=scope, value=value, reason=reason, created_by=actor, created_at=now)
            .returning(HOLDS.c.id)
        ).scalar_one()
    )
    record_audit_event(
        conn,
        AuditEvent(
            at=now,
            actor=actor,
            source=source,
            action="hold_set",
            target=value,
            detail={"hold": hold_id, "scope": scope, "reason": reason},
            address=address,
        ),
    )
    return hold_id


def release_hold(
    conn: Connection,
    hold_id: int,
    *,
    reason: str,
    actor: str,
    now: datetime,
    source: str = "web",
    address: str = "",
) -> Hold:
    """Release an active hold (audited); returns it as it was.

    Raises:
        HoldError: no such active hold, or an empty reason.
    """
    reason = _clean(reason, "reason", REASON_MAX)
    row = conn.execute(select(HOLDS).where(HOLDS.c.id == hold_id)).first()
    if row is None or row.released_at is not None:
        raise HoldError("not_found", "没有这个生效中的保留。")
    changed = conn.execute(
        update(HOLDS)
        .where(HOLDS.c.id == hold_id, HOLDS.c.released_at.is_(None))
        .values(released_by=actor, released_at=now, release_reason=reason)
    ).rowcount
    if changed != 1:  # released meanwhile by another admin
        raise HoldError("not_found", "没有这个生效中的保留。")
    record_audit_event(
        conn,
        AuditEvent(
            at=now,
            actor=actor,
            source=source,
            action="hold_release",
            target=str(row.value),
            detail={"hold": hold_id, "scope": row.scope, "reason": reason},
            address=address,
        ),
    )
    return _hold(row)


def list_holds(conn: Connection, *, active_only: bool = False) -> list[Hold]:
    """Holds, active ones first, newest first."""
    query = select(HOLDS)
    if active_only:
        query = query.where(HOLDS.c.released_at.is_(None))
    rows = conn.execute(query.order_by(HOLDS.c.id.desc())).all()
    holds = [_hold(row) for row in rows]
    return sorted(holds, key=lambda h: not h.active)  # stable: newest first within each


def load_hold_set(conn: Connection) -> HoldSet:
    """What a purge must keep now (one read; see the module docstring)."""
    held = list_holds(conn, active_only=True)
    conversations = {h.value for h in held if h.scope == HoldScope.CONVERSATION}
    staff = frozenset(h.value for h in held if h.scope == HoldScope.STAFF)
    conversations.update(
        str(row[0])
        for row in conn.execute(
            select(_ALERTS.c.conversation_id).distinct().where(_ALERTS.c.status.not_in(_CLOSED))
        )
    )
    if staff:
        conversations.update(f"app:{userid}" for userid in staff)
        conversations.update(_of_staff(conn, staff))
    return HoldSet(frozenset(conversations), staff)


def _of_staff(conn: Connection, staff: Iterable[str]) -> set[str]:
    names = sorted(staff)
    found = {
        str(row[0])
        for row in conn.execute(
            select(_ALERTS.c.conversation_id).distinct().where(_ALERTS.c.staff_userid.in_(names))
        )
    }
    found.update(
        str(row[0])
        for row in conn.execute(
            select(_MESSAGES.c.conversation_id)
            .distinct()
            .where(_MESSAGES.c.from_user.in_(names), _MESSAGES.c.conversation_id.is_not(None))
        )
    )
    return found


def _hold(row: object) -> Hold:
    mapping = row._mapping  # type: ignore[attr-defined]
    return Hold(**{name: mapping[name] for name in Hold.__dataclass_fields__})
