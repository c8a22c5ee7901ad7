"""The tamper-evident hash chains: blocks, a lock row per chain, and the daily anchor claims.

Revision ID: 0003
Revises: 0002

Every row already stored joins its chain here, so ``run_bot.py archive verify`` passes right after
the upgrade: the messages (with their hits) and flags go into the ``archive`` chain, the audit rows
into the ``audit`` chain, in id order, as genesis blocks of at most :data:`GENESIS_ROWS` rows each
(one block per chain for most databases; a big archive gets several, so no block is huge). Both
lock rows are made even for an empty database, so appends always find a row to lock. No row is
changed or lost. A downgrade drops the chain tables (and with them the chains).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import chain as chained

import sqlalchemy as sa
from alembic import op

from monitor.archive.chain import (
    AUDIT_FIELDS,
    FLAG_FIELDS,
    HIT_FIELDS,
    MESSAGE_FIELDS,
    ZERO_HASH,
    Entry,
    audit_digest,
    block_hash,
    encode_entries,
    flag_digest,
)
from monitor.archive.chain_scan import scan_messages, scan_rows

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

GENESIS_ROWS = 10_000
"""Rows per genesis block."""

_AT = sa.DateTime(timezone=True)
_OLD = sa.MetaData()

_TIMES = frozenset({"received_at", "created_at", "at"})


def _table(name: str, *columns: str) -> sa.Table:
    """A chained table as this revision reads it: the columns of format 1's canonical forms,
    typed only where the driver's value needs converting (times, text on SQLite)."""
    return sa.Table(
        name,
        _OLD,
        sa.Column("id", sa.Integer(), primary_key=True),
        *(sa.Column(c, _AT) if c in _TIMES else sa.Column(c) for c in columns),
    )


_MESSAGE = _table("message", *MESSAGE_FIELDS)
_HIT = _table("hit", "message_id", *HIT_FIELDS)
_FLAG = _table("message_flag", *FLAG_FIELDS)
_AUDIT = _table("audit_event", *AUDIT_FIELDS)


def upgrade() -> None:
    blocks = op.create_table(
        "chain_block",
        sa.Column("chain", sa.String(16), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("block_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("entries", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("chain", "seq"),
    )
    locks = op.create_table("chain_lock", sa.Column("chain", sa.String(16), primary_key=True))
    op.create_table(
        "chain_anchor",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("lease_until", _AT, nullable=False),
        sa.Column("posted_at", _AT, nullable=True),
    )
    bind = op.get_bind()
    now = datetime.now(UTC)
    archive = _entries(scan_messages(bind, _MESSAGE, _HIT), "message")
    flags = _entries(scan_rows(bind, _FLAG, FLAG_FIELDS, flag_digest), "message_flag")
    audit = _entries(scan_rows(bind, _AUDIT, AUDIT_FIELDS, audit_digest), "audit_event")
    for chain, entries in (("archive", chained(archive, flags)), ("audit", audit)):
        prev = ZERO_HASH
        for seq, chunk in enumerate(_chunks(entries, GENESIS_ROWS), start=1):
            text = encode_entries(chunk)
            digest = block_hash(chain, seq, prev, now, text)
            bind.execute(
                sa.insert(blocks),
                {
                    "chain": chain,
                    "seq": seq,
                    "prev_hash": prev,
                    "block_hash": digest,
                    "created_at": now,
                    "entries": text,
                },
            )
            prev = digest
        bind.execute(sa.insert(locks), {"chain": chain})


def _entries(rows: Iterable[tuple[int, str]], table: str) -> Iterator[Entry]:
    return (Entry(table, row_id, digest) for row_id, digest in rows)


def _chunks(entries: Iterator[Entry], size: int) -> Iterator[list[Entry]]:
    chunk: list[Entry] = []
    for entry in entries:
        chunk.append(entry)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def downgrade() -> None:
    for table in ("chain_anchor", "chain_lock", "chain_block"):
        op.drop_table(table)
