"""The recorded kf actions (``kf_reply`` rows): read the pending ones, record outcomes.

Units for the group-commit writer, like :mod:`bot.kf.store`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, select, update

from monitor.archive.kf_models import ActionStatus, KfActionRecord
from monitor.archive.upsert import insert_ignore

__all__ = ["ActionRow", "finish_action", "pending_actions", "record_action"]

_ACTION: Table = KfActionRecord.__table__


@dataclass(frozen=True, slots=True)
class ActionRow:
    """A recorded action, as the sender needs it."""

    id: int
    msgid: str
    kind: str
    open_kfid: str
    external_userid: str
    msgtype: str
    body: dict[str, Any]
    attempts: int
    created_at: datetime


def pending_actions(conn: Connection, open_kfid: str) -> list[ActionRow]:
    """The account's pending actions, oldest first."""
    query = (
        select(_ACTION)
        .where(_ACTION.c.open_kfid == open_kfid, _ACTION.c.status == ActionStatus.PENDING)
        .order_by(_ACTION.c.id)
    )
    return [
        ActionRow(
            id=int(r.id),
            msgid=r.msgid,
            kind=r.kind,
            open_kfid=r.open_kfid,
            external_userid=r.external_userid,
            msgtype=r.msgtype,
            body=json.loads(r.body),
            attempts=int(r.attempts),
            created_at=r.created_at,
        )
        for r in conn.execute(query)
    ]


def finish_action(
    conn: Connection, action_id: int, status: str, *, error: str = "", at: float
) -> None:
    """Record an attempt's outcome (``pending`` again counts one more attempt)."""
    values: dict[str, Any] = {"status": status, "error": error, "attempts": _ACTION.c.attempts + 1}
    if status == ActionStatus.SENT:
        values["sent_at"] = _at(at)
    # Only a pending row: a msg_send_fail event may have marked it meanwhile, and wins.
    conn.execute(
        update(_ACTION)
        .where(_ACTION.c.id == action_id, _ACTION.c.status == ActionStatus.PENDING)
        .values(**values)
    )


def record_action(conn: Connection, row: dict[str, Any]) -> None:
    """Insert one action row as given (the welcome, recorded after its single attempt)."""
    conn.execute(insert_ignore(conn.dialect, _ACTION, ["msgid"]), [row])


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
