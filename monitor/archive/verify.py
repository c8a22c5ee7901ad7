"""Checking the hash chains: every block against its hash and its predecessor, every row against
the digest its block recorded, and every row against being in some block.

One pass per chain, streaming: the blocks in seq order and each chained table in id order, a page
at a time, inside one read transaction (PostgreSQL ``REPEATABLE READ``; SQLite's snapshot), so a
bot writing meanwhile changes nothing the walk sees. A table's rows are read as far as the
blocks claim them; only rows read ahead of their block are held, which is a handful (concurrent
workers commit their blocks in a slightly different order than their ids).

The walk stops at the first bad block, in seq order: a gap in the seqs (a block deleted), a
previous-block hash that is not the previous block's (the link broken), a hash that does not match
the block's contents (the block modified), or a row it records that is gone (deleted) or differs
(modified; reordered when it holds what the block recorded for another of its rows). Rows no block
records (inserted, or the rows of deleted last blocks) can only be told once every block was read,
so they are reported when all blocks checked out.

Rows a retention purge deleted are named by purge checkpoint blocks (format:
:mod:`monitor.archive.chain`). Before the walk, one query reads the checkpoint blocks (their
entries text starts with ``purge:``) and keeps what they name, about 100 bytes per purged row. In
the walk, a row its block records may be absent only when a later checkpoint names it with the
same digest; a checkpoint block, when reached, must be well-formed, hash right, and every row it
names must have been accounted for that way (else :attr:`ProblemKind.CHECKPOINT_INVALID`). A
checkpoint the walk reaches after accepting a row's absence still has its hash checked, so an
edited checkpoint is reported at its own block.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection, Engine, select

from monitor.archive.audit import AUDIT
from monitor.archive.chain import (
    AUDIT_FIELDS,
    CHAIN_TABLES,
    CHECKPOINT_PREFIX,
    FLAG_FIELDS,
    QUARANTINE_FIELDS,
    ZERO_HASH,
    Chain,
    Entry,
    audit_digest,
    block_hash,
    decode_checkpoint,
    decode_entries,
    flag_digest,
    is_checkpoint,
    quarantine_digest,
)
from monitor.archive.chain_scan import RowDigest, scan_messages, scan_rows
from monitor.archive.chain_store import BLOCKS, Head, read_heads
from monitor.archive.database import read_snapshot
from monitor.archive.kf_models import MessageFlagRecord
from monitor.archive.models import HitRecord, MessageRecord
from monitor.archive.msgaudit_models import MsgauditQuarantineRecord

__all__ = ["ChainReport", "Problem", "ProblemKind", "verify_chain", "verify_database"]

_BLOCK_PAGE = 50
"""Blocks fetched per round trip (a genesis block may hold 10,000 entries: keep pages small)."""

Tick = Callable[[int], object]
"""Called with 1 after each block checked (a progress bar's ``update``)."""


class ProblemKind(StrEnum):
    """What is wrong at the first bad place of a chain."""

    MODIFIED = "modified"
    """A row differs from what its block recorded."""
    REORDERED = "reordered"
    """A row holds what its block recorded for another of its rows (ids or contents swapped)."""
    DELETED = "deleted"
    """A row its block recorded is gone."""
    INSERTED = "inserted"
    """A row no block records (for a hit: its message is in no block)."""
    BLOCK_MODIFIED = "block_modified"
    """A block's hash does not match its contents (or its entries are not well-formed)."""
    BLOCK_MISSING = "block_missing"
    """A block is gone: a gap in the seqs (gone last blocks leave their rows in no block)."""
    LINK_BROKEN = "link_broken"
    """A block's previous-block hash is not the previous block's hash."""
    CHECKPOINT_INVALID = "checkpoint_invalid"
    """A purge checkpoint names a row that is still present, that no earlier block recorded with
    that digest, or that another checkpoint named already."""


@dataclass(frozen=True, slots=True)
class Problem:
    """The first bad place found in a chain."""

    chain: Chain
    kind: ProblemKind
    block: int
    """The bad block's seq; for an inserted row, the block after which it sits (0: before 1)."""
    table: str | None = None
    row_id: int | None = None
    other_id: int | None = None
    """For :attr:`ProblemKind.REORDERED`: the row whose recorded contents ``row_id`` holds."""
    after_last: bool = False
    """For :attr:`ProblemKind.INSERTED`: the row comes after the last block's rows, so it may
    also be the row of a last block that was deleted."""

    def describe(self) -> str:
        """One line, e.g. ``archive chain broken at block 12: message 345 was modified``."""
        row = f"{self.table} {self.row_id}"
        where = f"at block {self.block}"
        match self.kind:
            case ProblemKind.MODIFIED | ProblemKind.DELETED:
                what = f"{row} was {self.kind.value}"
            case ProblemKind.REORDERED:
                what = f"{row} holds the contents of {self.table} {self.other_id} (rows reordered)"
            case ProblemKind.INSERTED if self.after_last:
                where = f"after block {self.block}" if self.block else "before block 1"
                what = f"{row} is in no block (inserted, or later blocks were deleted)"
            case ProblemKind.INSERTED:
                where = f"after block {self.block}" if self.block else "before block 1"
                what = f"{row} was inserted (no block holds it)"
            case ProblemKind.BLOCK_MODIFIED:
                what = "the block was modified (its hash does not match its contents)"
            case ProblemKind.BLOCK_MISSING:
                what = "the block is missing"
            case ProblemKind.LINK_BROKEN:
                what = f"its previous-block hash is not the hash of block {self.block - 1}"
            case ProblemKind.CHECKPOINT_INVALID:
                what = (
                    f"the purge checkpoint names {row}, which is still present or which no "
                    "earlier block recorded with that digest"
                )
        return f"{self.chain} chain broken {where}: {what}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What checking one chain found."""

    chain: Chain
    blocks: int
    """Blocks checked (up to the bad one)."""
    rows: Mapping[str, int]
    """Rows checked against their blocks, per table."""
    head: Head
    """The last block checked."""
    problem: Problem | None
    purged: Mapping[str, int] = field(default_factory=dict)
    """Rows checked as deleted by a retention purge (named by a later checkpoint), per table."""

    @property
    def ok(self) -> bool:
        """Whether the chain is intact."""
        return self.problem is None


class _Rows:
    """One table's rows in id order, read as far as the blocks need them."""

    def __init__(self, rows: Generator[RowDigest, None, None]) -> None:
        self._rows = rows
        self._ahead: dict[int, tuple[str, int]] = {}  # id -> (digest, block being checked)
        self._last: float = -math.inf  # the highest id read

    def take(self, row_id: int, seq: int) -> str | None:
        """The digest of row ``row_id`` (claimed by block ``seq``), None if there is none."""
        while self._last < row_id:
            row = next(self._rows, None)
            if row is None:
                self._last = math.inf
                break
            self._ahead[row[0]] = (row[1], seq)
            self._last = row[0]
        found = self._ahead.pop(row_id, None)
        return None if found is None else found[0]

    def close(self) -> None:
        """Stop reading (closes the table's cursor)."""
        self._rows.close()

    def unclaimed(self, last_seq: int) -> tuple[int, int] | None:
        """The first row no block claimed, as (the block it sits after, its id)."""
        if self._ahead:
            return min((seq - 1, row_id) for row_id, (_digest, seq) in self._ahead.items())
        row = next(self._rows, None)
        return None if row is None else (last_seq, row[0])


def _streams(conn: Connection, chain: Chain, orphans: list[int]) -> dict[str, _Rows]:
    if chain is Chain.AUDIT:
        return {"audit_event": _Rows(scan_rows(conn, AUDIT, AUDIT_FIELDS, audit_digest))}
    return {
        "message": _Rows(
            scan_messages(conn, MessageRecord.__table__, HitRecord.__table__, orphans)
        ),
        "message_flag": _Rows(
            scan_rows(conn, MessageFlagRecord.__table__, FLAG_FIELDS, flag_digest)
        ),
        "msgaudit_quarantine": _Rows(
            scan_rows(
                conn, MsgauditQuarantineRecord.__table__, QUARANTINE_FIELDS, quarantine_digest
            )
        ),
    }


_BLOCK_COLUMNS = (
    BLOCKS.c.seq,
    BLOCKS.c.prev_hash,
    BLOCKS.c.block_hash,
    BLOCKS.c.created_at,
    BLOCKS.c.entries,
)


@dataclass(slots=True)
class _Purged:
    """A row a checkpoint names: the digest it names it with, where, and whether it was used."""

    digest: str
    checkpoint: int
    used: bool = False


def _checkpoints(conn: Connection, chain: Chain) -> dict[tuple[str, int], _Purged]:
    """What the chain's checkpoint blocks name (the first naming wins; the walk checks them)."""
    query = (
        select(BLOCKS.c.seq, BLOCKS.c.entries)
        .where(BLOCKS.c.chain == chain.value, BLOCKS.c.entries.startswith(CHECKPOINT_PREFIX))
        .order_by(BLOCKS.c.seq)
    )
    named: dict[tuple[str, int], _Purged] = {}
    with conn.execute(query, execution_options={"yield_per": _BLOCK_PAGE}) as blocks:
        for seq, text in blocks:
            try:
                checkpoint = decode_checkpoint(text)
            except ValueError:
                continue  # the walk reports the block as modified
            for entry in checkpoint.purged:
                named.setdefault((entry.table, entry.row_id), _Purged(entry.digest, seq))
    return named


class _Walk:
    """One chain's walk: the blocks in seq order against the row streams."""

    def __init__(self, conn: Connection, chain: Chain) -> None:
        self.chain = chain
        self.orphans: list[int] = []
        self.named = _checkpoints(conn, chain)
        self.streams = _streams(conn, chain, self.orphans)
        self.rows = dict.fromkeys(CHAIN_TABLES[chain], 0)
        self.purged = dict.fromkeys(CHAIN_TABLES[chain], 0)
        self.last = Head(0, ZERO_HASH)

    def close(self) -> None:
        for stream in self.streams.values():
            stream.close()

    def problem(self, kind: ProblemKind, seq: int, entry: Entry | None = None) -> Problem:
        if entry is None:
            return Problem(self.chain, kind, seq)
        return Problem(self.chain, kind, seq, entry.table, entry.row_id)

    def block(
        self, seq: int, prev_hash: str, digest: str, created_at: datetime, text: str
    ) -> Problem | None:
        """Check one block and the rows it records; None when it is sound (then it is the last)."""
        if seq != self.last.seq + 1:
            return self.problem(ProblemKind.BLOCK_MISSING, self.last.seq + 1)
        if prev_hash != self.last.block_hash:
            return self.problem(ProblemKind.LINK_BROKEN, seq)
        if is_checkpoint(text):
            return self._checkpoint(seq, prev_hash, digest, created_at, text)
        return self._rows_block(seq, prev_hash, digest, created_at, text)

    def _rows_block(
        self, seq: int, prev_hash: str, digest: str, created_at: datetime, text: str
    ) -> Problem | None:
        try:
            entries = decode_entries(text)
        except ValueError:
            entries = []
            digest = ""  # not well-formed: modified, whatever its hash
        if block_hash(self.chain, seq, prev_hash, created_at, text) != digest or any(
            e.table not in self.streams for e in entries
        ):
            return self.problem(ProblemKind.BLOCK_MODIFIED, seq)
        for entry in entries:
            actual = self.streams[entry.table].take(entry.row_id, seq)
            if actual is None:
                if self._purged(entry, seq):
                    continue
                return self.problem(ProblemKind.DELETED, seq, entry)
            if actual != entry.digest:
                return self._differs(seq, entry, actual, entries)
            self.rows[entry.table] += 1
        self.last = Head(seq, digest)
        return None

    def _purged(self, entry: Entry, seq: int) -> bool:
        """Whether a later checkpoint names ``entry``'s absent row with its digest (then used)."""
        named = self.named.get((entry.table, entry.row_id))
        if named is None or named.used or named.checkpoint <= seq or named.digest != entry.digest:
            return False
        named.used = True
        self.purged[entry.table] += 1
        return True

    def _checkpoint(
        self, seq: int, prev_hash: str, digest: str, created_at: datetime, text: str
    ) -> Problem | None:
        try:
            purged = decode_checkpoint(text).purged
        except ValueError:
            return self.problem(ProblemKind.BLOCK_MODIFIED, seq)
        if block_hash(self.chain, seq, prev_hash, created_at, text) != digest or any(
            e.table not in self.streams for e in purged
        ):
            return self.problem(ProblemKind.BLOCK_MODIFIED, seq)
        for entry in purged:
            named = self.named.get((entry.table, entry.row_id))
            if (
                named is None
                or named.checkpoint != seq
                or not named.used
                or named.digest != entry.digest
            ):
                return self.problem(ProblemKind.CHECKPOINT_INVALID, seq, entry)
        self.last = Head(seq, digest)
        return None

    def _differs(self, seq: int, entry: Entry, actual: str, entries: list[Entry]) -> Problem:
        other = next(
            (e.row_id for e in entries if e.table == entry.table and e.digest == actual), None
        )
        if other is None:
            return self.problem(ProblemKind.MODIFIED, seq, entry)
        return replace(self.problem(ProblemKind.REORDERED, seq, entry), other_id=other)

    def end(self) -> Problem | None:
        """After the last block: the first row no block holds."""
        found = [
            (after, row_id, table)
            for table, stream in self.streams.items()
            if (first := stream.unclaimed(self.last.seq)) is not None
            for after, row_id in (first,)
        ]
        if self.orphans:  # hits of no message (those past the last message: once it was read)
            found.append((self.last.seq, min(self.orphans), "hit"))
        if not found:
            return None
        after, row_id, table = min(found)
        last = after == self.last.seq
        return Problem(self.chain, ProblemKind.INSERTED, after, table, row_id, after_last=last)


def verify_chain(conn: Connection, chain: Chain, tick: Tick | None = None) -> ChainReport:
    """Walk ``chain`` on ``conn`` (inside a read transaction: see :func:`verify_database`)."""
    walk = _Walk(conn, chain)
    query = select(*_BLOCK_COLUMNS).where(BLOCKS.c.chain == chain.value).order_by(BLOCKS.c.seq)
    problem: Problem | None = None
    try:
        with conn.execute(query, execution_options={"yield_per": _BLOCK_PAGE}) as blocks:
            for seq, prev_hash, digest, created_at, text in blocks:
                problem = walk.block(seq, prev_hash, digest, created_at, text)
                if problem is not None:
                    break
                if tick is not None:
                    tick(1)
            else:
                problem = walk.end()
    finally:
        walk.close()
    return ChainReport(chain, walk.last.seq, walk.rows, walk.last, problem, walk.purged)


ProgressFactory = Callable[[Chain, int], Tick | None]
"""Given a chain and its number of blocks (the head's seq), what to call after each block."""


def verify_database(engine: Engine, progress: ProgressFactory | None = None) -> list[ChainReport]:
    """Walk every chain in one read transaction; one report per chain, ``archive`` first."""
    with engine.connect() as conn, read_snapshot(conn).begin():
        heads = read_heads(conn)
        return [
            verify_chain(
                conn, chain, None if progress is None else progress(chain, heads[chain].seq)
            )
            for chain in Chain
        ]
