"""Appending blocks: rows are noted on their transaction and sealed into one block per chain
just before that transaction commits.

Code that writes a chained row (a message, a flag, an audit row) calls :func:`chain_rows` on the
same connection with the rows' ids and digests; nothing else changes for its callers. A commit hook
(SQLAlchemy's ``commit`` connection event, listened to on every :class:`~sqlalchemy.Engine` once
this module is imported) then appends one block per chain holding the transaction's rows, on the
same transaction, right before ``COMMIT``:

1. on PostgreSQL, lock the chain's row in ``chain_lock`` (``SELECT ... FOR UPDATE``); a SQLite
   writer holds the database's write lock already,
2. read the chain's last block (its head), and
3. insert the next block, carrying the head's hash.

Concurrent workers thus wait for each other only for those statements at the very end of their
transactions; the rest of their work runs in parallel. Chains are sealed in name order
(``archive`` before ``audit``), so two transactions never take the locks in opposite orders. A
rollback, or a savepoint rolled back, drops the rows noted in it; if appending fails, so does the
commit, and the rows are rolled back with the block.

The statements are driver SQL, built once per driver: this runs once per group commit, and Core
statements cost about twice the Python time. One block row per commit is all the chain writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Dialect, Engine, Table, event, select

from monitor.archive.chain import (
    ZERO_HASH,
    Chain,
    Checkpoint,
    Entry,
    block_hash,
    encode_checkpoint,
    encode_entries,
)
from monitor.archive.chain_models import ChainBlockRecord, ChainLockRecord
from monitor.archive.upsert import insert_ignore

__all__ = [
    "BLOCKS",
    "LOCKS",
    "Head",
    "append_block",
    "append_checkpoint",
    "chain_rows",
    "read_heads",
]

BLOCKS: Table = ChainBlockRecord.__table__
LOCKS: Table = ChainLockRecord.__table__

_PENDING = "sentinel_chain_pending"
"""``conn.info`` key: chain -> entries noted on the open transaction."""
_SAVEPOINTS = "sentinel_chain_savepoints"
"""``conn.info`` key: for each open savepoint, the entries per chain when it began."""
_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


@dataclass(frozen=True, slots=True)
class Head:
    """A chain's latest block: its seq (0 before the first block) and hash."""

    seq: int
    block_hash: str


class _AppendSql:
    """The append's statements in one driver's parameter style."""

    def __init__(self, dialect: Dialect) -> None:
        mark = _MARKS.get(dialect.paramstyle)
        if mark is None:
            raise NotImplementedError(f"hash chain: no SQL for paramstyle {dialect.paramstyle}")
        self.lock = (
            f"SELECT chain FROM {LOCKS.name} WHERE chain = {mark} FOR UPDATE"
            if dialect.name == "postgresql"
            else None
        )
        self.last = (
            f"SELECT seq, block_hash FROM {BLOCKS.name} WHERE chain = {mark} "
            "ORDER BY seq DESC LIMIT 1"
        )
        self.insert = (
            f"INSERT INTO {BLOCKS.name} (chain, seq, prev_hash, block_hash, created_at, entries) "
            f"VALUES ({', '.join([mark] * 6)})"
        )
        created_at = BLOCKS.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
        self.created_at: Callable[[datetime], Any] = created_at or (lambda value: value)


_SQL: dict[tuple[str, str, str], _AppendSql] = {}
"""Built once per (backend, driver, paramstyle)."""


def _sql(dialect: Dialect) -> _AppendSql:
    key = (dialect.name, dialect.driver, dialect.paramstyle)
    sql = _SQL.get(key)
    if sql is None:
        sql = _SQL[key] = _AppendSql(dialect)
    return sql


def chain_rows(conn: Connection, chain: Chain, entries: Iterable[Entry]) -> None:
    """Note rows written on ``conn``'s open transaction for ``chain``'s block at its commit."""
    pending: dict[Chain, list[Entry]] = conn.info.setdefault(_PENDING, {})
    pending.setdefault(chain, []).extend(entries)


def append_block(conn: Connection, chain: Chain, entries: list[Entry], now: datetime) -> Head:
    """Append one block holding ``entries`` to ``chain`` on ``conn``'s transaction; the new head.

    Locks the chain until the transaction ends: call it last (the commit hook does).
    """
    return _append(conn, chain, encode_entries(entries), now)


def append_checkpoint(conn: Connection, checkpoint: Checkpoint, now: datetime) -> Head:
    """Append a purge checkpoint block to the archive chain on ``conn``'s transaction.

    Call it in the transaction that deletes the rows it names, as its last statement: like
    :func:`append_block` it locks the chain until the transaction ends.
    """
    return _append(conn, Chain.ARCHIVE, encode_checkpoint(checkpoint), now)


def _append(conn: Connection, chain: Chain, text: str, now: datetime) -> Head:
    sql = _sql(conn.dialect)
    if sql.lock is not None and conn.exec_driver_sql(sql.lock, (chain.value,)).first() is None:
        # No lock row (the table was made again from the models): concurrent workers insert it
        # once, then lock it.
        conn.execute(insert_ignore(conn.dialect, LOCKS, ["chain"]), {"chain": chain.value})
        conn.exec_driver_sql(sql.lock, (chain.value,)).one()
    last = conn.exec_driver_sql(sql.last, (chain.value,)).first()
    head = Head(0, ZERO_HASH) if last is None else Head(int(last[0]), str(last[1]))
    seq = head.seq + 1
    digest = block_hash(chain, seq, head.block_hash, now, text)
    conn.exec_driver_sql(
        sql.insert, (chain.value, seq, head.block_hash, digest, sql.created_at(now), text)
    )
    return Head(seq, digest)


def read_heads(conn: Connection) -> dict[Chain, Head]:
    """Every chain's head: its last block (seq 0 and :data:`ZERO_HASH` while it has none)."""
    heads: dict[Chain, Head] = {}
    for chain in Chain:
        last = conn.execute(
            select(BLOCKS.c.seq, BLOCKS.c.block_hash)
            .where(BLOCKS.c.chain == chain.value)
            .order_by(BLOCKS.c.seq.desc())
            .limit(1)
        ).first()
        heads[chain] = Head(0, ZERO_HASH) if last is None else Head(int(last[0]), str(last[1]))
    return heads


# --- the transaction hooks -----------------------------------------------------------------------


def _seal(conn: Connection) -> None:
    pending: dict[Chain, list[Entry]] | None = conn.info.pop(_PENDING, None)
    conn.info.pop(_SAVEPOINTS, None)
    if not pending:
        return
    now = datetime.now(UTC)
    for chain in sorted(pending):
        if pending[chain]:
            append_block(conn, chain, pending[chain], now)


def _discard(conn: Connection) -> None:
    conn.info.pop(_PENDING, None)
    conn.info.pop(_SAVEPOINTS, None)


def _savepoint(conn: Connection, _name: str) -> None:
    pending: dict[Chain, list[Entry]] = conn.info.get(_PENDING, {})
    marks = {chain: len(entries) for chain, entries in pending.items()}
    conn.info.setdefault(_SAVEPOINTS, []).append(marks)


def _rollback_savepoint(conn: Connection, _name: str, _context: object) -> None:
    marks: list[dict[Chain, int]] = conn.info.get(_SAVEPOINTS, [])
    if not marks:
        return
    kept = marks.pop()
    pending: dict[Chain, list[Entry]] = conn.info.get(_PENDING, {})
    for chain, entries in pending.items():
        del entries[kept.get(chain, 0) :]


def _release_savepoint(conn: Connection, _name: str, _context: object) -> None:
    marks: list[dict[Chain, int]] = conn.info.get(_SAVEPOINTS, [])
    if marks:
        marks.pop()


# Every engine: a chained row written through any of them must get its block. A transaction that
# noted nothing pays one dict lookup per commit.
event.listen(Engine, "commit", _seal)
event.listen(Engine, "rollback", _discard)
event.listen(Engine, "begin", _discard)
event.listen(Engine, "savepoint", _savepoint)
event.listen(Engine, "rollback_savepoint", _rollback_savepoint)
event.listen(Engine, "release_savepoint", _release_savepoint)
