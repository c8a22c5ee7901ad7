"""Flags on archived messages (recalled, send failed), written on the caller's transaction.

A flag never changes or removes the message it marks: a recall leaves the original archived, and
the flag says it was recalled. Each new flag goes into the ``archive`` hash chain with the block its
transaction appends (``monitor.archive.chain_store``); a flag already set (the same message and
flag, e.g. a page pulled again) is left as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Table

from monitor.archive.chain import FLAG_FIELDS, Chain, Entry, flag_digest
from monitor.archive.chain_store import chain_rows
from monitor.archive.kf_models import MessageFlagRecord
from monitor.archive.upsert import insert_ignore

__all__ = ["NewFlag", "record_flags"]

_FLAG: Table = MessageFlagRecord.__table__


@dataclass(frozen=True, slots=True)
class NewFlag:
    """A flag to set on the archived message with ``dedupe_key``."""

    dedupe_key: str
    flag: str
    detail: str
    source_key: str
    created_at: datetime


def record_flags(conn: Connection, flags: Sequence[NewFlag]) -> int:
    """Set ``flags`` on ``conn``'s transaction, skipping those already set; returns how many were new."""
    stmt = insert_ignore(conn.dialect, _FLAG, ["dedupe_key", "flag"]).returning(_FLAG.c.id)
    entries: list[Entry] = []
    for flag in flags:  # one by one: flags are rare, and each new one's id is needed
        row = {name: getattr(flag, name) for name in FLAG_FIELDS}
        row_id = conn.execute(stmt, row).scalar_one_or_none()
        if row_id is not None:
            digest = flag_digest([row[name] for name in FLAG_FIELDS])
            entries.append(Entry("message_flag", int(row_id), digest))
    if entries:
        chain_rows(conn, Chain.ARCHIVE, entries)
    return len(entries)
