"""The audit trail: every reviewer action and view, every alert state change, one row each.

One table for all of them (``audit_event``), written on the caller's transaction so an action and
its audit row commit together. Every row goes into the ``audit`` hash chain: the transaction that
writes audit rows appends one block holding them as it commits (``monitor.archive.chain_store``),
and ``run_bot.py archive verify`` walks it beside the archive's chain.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, Text, insert
from sqlmodel import Field

from monitor.archive.chain import AUDIT_FIELDS, Chain, Entry, audit_digest
from monitor.archive.chain_store import chain_rows
from monitor.tables import TableModel, UTCDateTime

__all__ = ["AUDIT", "AuditEvent", "AuditEventRecord", "record_audit_event"]


class AuditEventRecord(TableModel, table=True):
    """Who did what, when, from where, to which target (an alert, a conversation, an account)."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    actor: str
    """A reviewer's username, a manager's WeCom userid, or ``system``."""
    source: str
    """Where it came from: ``web`` (review web), ``card`` (a WeCom card button), ``cli``, ``system``."""
    action: str
    """``login``, ``login_failed``, ``logout``, ``view``, ``claim``, ``assign``, ``release``,
    ``resolve``, ``false_positive``, ``escalate``, ``reopen``, ``note``, ``user_add``, ..."""
    target: str = Field(default="", index=True)
    """The alert id, conversation id or username acted on ("" for none)."""
    detail: str = Field(default="{}", sa_type=Text)
    """JSON object: state before/after, the comment, the assignee, ..."""
    address: str = ""
    """The client address of a web action ("" for cards, the CLI and the system)."""


AUDIT: Table = AuditEventRecord.__table__
_INSERT = insert(AUDIT).returning(AUDIT.c.id)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audit row as callers hand it over."""

    at: datetime
    actor: str
    source: str
    action: str
    target: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)
    address: str = ""


def record_audit_event(conn: Connection, event: AuditEvent) -> int:
    """Append ``event`` to the audit trail on ``conn``'s transaction; returns its row id.

    The row joins the audit chain's block that the transaction appends as it commits.
    """
    values = {
        "at": event.at,
        "actor": event.actor,
        "source": event.source,
        "action": event.action,
        "target": event.target,
        "detail": json.dumps(dict(event.detail), ensure_ascii=False, sort_keys=True),
        "address": event.address,
    }
    row_id = int(conn.execute(_INSERT, values).scalar_one())
    digest = audit_digest([values[name] for name in AUDIT_FIELDS])
    chain_rows(conn, Chain.AUDIT, [Entry("audit_event", row_id, digest)])
    return row_id
