"""Reading chained rows back, in id order, as (id, digest) pairs: one pass, a page at a time.

The verifier compares these with the blocks; the migration that started the chains made its
genesis blocks from them. Both pass the tables in (the migration its own spelled-out ones), and
digests come from :mod:`monitor.archive.chain`, so a row is digested the same way it was when its
block was written.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Table, select

from monitor.archive.chain import HIT_EXTRA_FIELDS, HIT_FIELDS, MESSAGE_FIELDS, message_digest

__all__ = ["PAGE_ROWS", "message_digests", "row_digests", "scan_messages", "scan_rows"]

PAGE_ROWS = 1000
"""Rows fetched per round trip (server-side cursors on PostgreSQL)."""

# Per statement: Connection.execution_options() would change the connection itself, and every
# later statement on it (the migration's INSERTs) would go through a server-side cursor too.
_STREAM = {"yield_per": PAGE_ROWS}

RowDigest = tuple[int, str]


def scan_rows(
    conn: Connection,
    table: Table,
    fields: Sequence[str],
    digest: Callable[[Sequence[Any]], str],
) -> Generator[RowDigest, None, None]:
    """Every row of ``table`` in id order, digested over ``fields`` (in that order)."""
    query = select(table.c.id, *(table.c[name] for name in fields)).order_by(table.c.id)
    with conn.execute(query, execution_options=_STREAM) as rows:
        for row in rows:
            yield int(row[0]), digest(row[1:])


def scan_messages(
    conn: Connection, message: Table, hit: Table, orphans: list[int] | None = None
) -> Generator[RowDigest, None, None]:
    """Every message in id order, digested with its hits.

    Hits whose ``message_id`` names no message are skipped; their ids go to ``orphans`` if given.
    """
    messages_query = select(message.c.id, *(message.c[name] for name in MESSAGE_FIELDS))
    # The extra hit columns where the table has them (revision 0003 runs before 0004 adds them).
    names = [name for name in (*HIT_FIELDS, *HIT_EXTRA_FIELDS) if name in hit.c]
    hits_query = select(hit.c.message_id, hit.c.id, *(hit.c[name] for name in names))
    with (
        conn.execute(messages_query.order_by(message.c.id), execution_options=_STREAM) as messages,
        conn.execute(
            hits_query.order_by(hit.c.message_id, hit.c.id), execution_options=_STREAM
        ) as hit_rows,
    ):
        yield from _merged(messages, iter(hit_rows), orphans)


def row_digests(
    conn: Connection,
    table: Table,
    fields: Sequence[str],
    digest: Callable[[Sequence[Any]], str],
    ids: Sequence[int],
) -> dict[int, str]:
    """The digests of the rows of ``table`` with these ids (a retention purge's batch)."""
    query = select(table.c.id, *(table.c[name] for name in fields)).where(table.c.id.in_(ids))
    return {int(row[0]): digest(row[1:]) for row in conn.execute(query)}


def message_digests(
    conn: Connection, message: Table, hit: Table, ids: Sequence[int]
) -> dict[int, str]:
    """The digests of the messages with these ids, each with its hits (as :func:`scan_messages`)."""
    if not ids:
        return {}
    names = [name for name in (*HIT_FIELDS, *HIT_EXTRA_FIELDS) if name in hit.c]
    messages = conn.execute(
        select(message.c.id, *(message.c[name] for name in MESSAGE_FIELDS))
        .where(message.c.id.in_(ids))
        .order_by(message.c.id)
    )
    hits = conn.execute(
        select(hit.c.message_id, hit.c.id, *(hit.c[name] for name in names))
        .where(hit.c.message_id.in_(ids))
        .order_by(hit.c.message_id, hit.c.id)
    )
    return dict(_merged(messages, iter(hits), None))


def _merged(
    messages: Iterable[Sequence[Any]], hits: Iterator[Sequence[Any]], orphans: list[int] | None
) -> Generator[RowDigest, None, None]:
    pending = next(hits, None)
    for row in messages:
        message_id = int(row[0])
        own: list[Sequence[Any]] = []
        while pending is not None and pending[0] <= message_id:
            if pending[0] == message_id:
                own.append(pending[2:])
            elif orphans is not None:
                orphans.append(int(pending[1]))
            pending = next(hits, None)
        yield message_id, message_digest(row[1:], own)
    while pending is not None:  # hits past the last message
        if orphans is not None:
            orphans.append(int(pending[1]))
        pending = next(hits, None)
