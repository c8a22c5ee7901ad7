"""Appending blocks: rows are noted on their transaction and sealed into one block per chain
just before that transaction commits.

Code that writes a chained row (a message, a flag, an audit row) calls :func:`chain_rows` on the
same connection with the rows' ids and digests; nothing else changes for its callers. A commit hook
(SQLAlchemy's ``commit`` connection event, listened to on every :class:`~sqlalchemy.Engine` once
this module is imported) then appends one block per chain holding the transaction's rows, on the
same transaction, right before ``COMMIT``:

1. lock the chain's head row (PostgreSQL ``SELECT ... FOR UPDATE``; a SQLite writer already
   holds the database's write lock),
2. insert block ``head + 1`` carrying the head's hash, and
3. move the head.

Concurrent workers thus wait for each other only for those three statements at the very end of
their transactions; the rest of their work runs in parallel. Chains are sealed in name order
(``archive`` before ``audit``), so two transactions never take the heads in opposite orders. A
rollback, or a savepoint rolled back, drops the rows noted in it; if appending fails, so does the
commit, and the rows are rolled back with the block.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, Table, bindparam, event, insert, select, update

from monitor.archive.chain import ZERO_HASH, Chain, Entry, block_hash, encode_entries
from monitor.archive.chain_models import ChainBlockRecord, ChainHeadRecord
from monitor.archive.upsert import insert_ignore
from monitor.log import chain_log

__all__ = ["BLOCKS", "HEADS", "Head", "append_block", "chain_rows", "read_heads"]

BLOCKS: Table = ChainBlockRecord.__table__
HEADS: Table = ChainHeadRecord.__table__

_PENDING = "sentinel_chain_pending"
"""``conn.info`` key: chain -> entries noted on the open transaction."""
_SAVEPOINTS = "sentinel_chain_savepoints"
"""``conn.info`` key: for each open savepoint, the entries per chain when it began."""

_LOCK_HEAD = (
    select(HEADS.c.seq, HEADS.c.block_hash)
    .where(HEADS.c.chain == bindparam("chain"))
    .with_for_update()  # rendered on PostgreSQL; SQLite has no row locks (nor needs them)
)
_LAST_BLOCK = (
    select(BLOCKS.c.seq, BLOCKS.c.block_hash)
    .where(BLOCKS.c.chain == bindparam("chain"))
    .order_by(BLOCKS.c.seq.desc())
    .limit(1)
)
_INSERT_BLOCK = insert(BLOCKS)
_MOVE_HEAD = (
    update(HEADS)
    .where(HEADS.c.chain == bindparam("head_chain"))
    .values(seq=bindparam("head_seq"), block_hash=bindparam("head_hash"))
)


@dataclass(frozen=True, slots=True)
class Head:
    """A chain's latest block: its seq (0 before the first block) and hash."""

    seq: int
    block_hash: str


def chain_rows(conn: Connection, chain: Chain, entries: Iterable[Entry]) -> None:
    """Note rows written on ``conn``'s open transaction for ``chain``'s block at its commit."""
    pending: dict[Chain, list[Entry]] = conn.info.setdefault(_PENDING, {})
    pending.setdefault(chain, []).extend(entries)


def append_block(conn: Connection, chain: Chain, entries: list[Entry], now: datetime) -> Head:
    """Append one block holding ``entries`` to ``chain`` on ``conn``'s transaction; the new head.

    Locks the chain's head row until the transaction ends: call it last (the commit hook does).
    """
    head = _lock_head(conn, chain)
    seq = head.seq + 1
    text = encode_entries(entries)
    digest = block_hash(chain, seq, head.block_hash, now, text)
    conn.execute(
        _INSERT_BLOCK,
        {
            "chain": chain,
            "seq": seq,
            "prev_hash": head.block_hash,
            "block_hash": digest,
            "created_at": now,
            "entries": text,
        },
    )
    conn.execute(_MOVE_HEAD, {"head_chain": chain, "head_seq": seq, "head_hash": digest})
    return Head(seq, digest)


def _lock_head(conn: Connection, chain: Chain) -> Head:
    row = conn.execute(_LOCK_HEAD, {"chain": chain}).first()
    if row is not None:
        return Head(int(row[0]), str(row[1]))
    # No head row: the table was made again from the models (dropped by hand), or a test built
    # the tables without migrations. Carry on from the last block, if any (starting over at 1
    # would collide with it); concurrent workers insert the row once, then lock it.
    last = conn.execute(_LAST_BLOCK, {"chain": chain}).first()
    seq, digest = (int(last[0]), str(last[1])) if last is not None else (0, ZERO_HASH)
    if last is not None:
        chain_log.warning("%s chain head row missing: continuing after block %d", chain, seq)
    conn.execute(
        insert_ignore(conn.dialect, HEADS, ["chain"]),
        {"chain": chain, "seq": seq, "block_hash": digest},
    )
    row = conn.execute(_LOCK_HEAD, {"chain": chain}).one()
    return Head(int(row[0]), str(row[1]))


def read_heads(conn: Connection) -> dict[Chain, Head]:
    """Every chain's head (seq 0 and :data:`~monitor.archive.chain.ZERO_HASH` when it has none)."""
    heads = {chain: Head(0, ZERO_HASH) for chain in Chain}
    for name, seq, digest in conn.execute(select(HEADS.c.chain, HEADS.c.seq, HEADS.c.block_hash)):
        if name in heads:
            heads[Chain(name)] = Head(int(seq), str(digest))
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
