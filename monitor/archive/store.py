"""The message archive: idempotent, group-committed stores of inbound messages."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlmodel
from sqlalchemy import (
    Connection,
    Dialect,
    Insert,
    Row,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
)
from sqlalchemy.exc import NoResultFound, SQLAlchemyError

from monitor.archive.chain import MESSAGE_FIELDS, Chain, Entry, message_digest
from monitor.archive.chain_store import chain_rows
from monitor.archive.models import (
    DEDUPE_KEY_MAX,
    ArchivedHit,
    HitRecord,
    InboundRecord,
    MessageRecord,
    StoreEffect,
)
from monitor.archive.queries import hits_query, message_query
from monitor.archive.search_index import SearchIndexWriter
from monitor.archive.upsert import insert_ignore
from monitor.archive.writer import GroupCommitWriter
from monitor.errors import StorageError

__all__ = ["Archive", "StoreResult"]

_TABLE: Table = MessageRecord.__table__

_COLUMNS = MESSAGE_FIELDS
"""The columns a store writes (all but the generated ``id``), in :func:`_row` order: the order of
a message's values in its hash-chain digest too."""

_Row = tuple[Any, ...]
"""One message's values for :data:`_COLUMNS`, before bind processing."""
_Item = tuple[_Row, tuple[ArchivedHit, ...], tuple[StoreEffect, ...]]
"""What one store queues: the message row, its hits and its in-transaction effects."""
_VERSION_INDEX = _COLUMNS.index("rules_version")
_RECEIVED_INDEX = _COLUMNS.index("received_at")
_CONTENT_INDEX = _COLUMNS.index("content")
_HIT_TABLE: Table = HitRecord.__table__

_PAGE_ROWS = 1000
"""Rows per INSERT statement; 11,000 parameters stay under SQLite's 32,766 limit."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class StoreResult:
    """Outcome of :meth:`Archive.store_inbound`."""

    message_id: int
    inserted: bool
    """False when this dedupe key was already archived (a WeCom retry): nothing was written."""


class Archive:
    """Stores inbound messages through a :class:`GroupCommitWriter` and reads them back.

    ``clock`` gives ``received_at`` (an aware UTC datetime); inject it in tests.
    """

    def __init__(
        self, writer: GroupCommitWriter, *, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self._writer = writer
        self._engine = writer.engine
        self._clock = clock
        self._store = _StoreInbound(self._engine.dialect)

    async def store_inbound(self, record: InboundRecord) -> StoreResult:
        """Archive ``record`` unless its dedupe key is already stored; return once committed.

        Idempotent: storing the same key twice (even inside one group-commit batch) writes one row
        and reports ``inserted=False`` with the first row's id the second time.

        Raises:
            ValueError: the dedupe key is empty or longer than 128 characters.
            StorageError: the database failed; answer 5xx so WeCom retries.
        """
        key = record.dedupe_key
        if not key or len(key) > DEDUPE_KEY_MAX:
            raise ValueError(f"dedupe_key must be 1..{DEDUPE_KEY_MAX} characters, got {len(key)}")
        item = (_row(record, self._clock()), record.hits, record.effects)
        return await self._writer.run_bulk(self._store, item)

    async def get(self, dedupe_key: str) -> MessageRecord | None:
        """The archived message with this dedupe key, or None."""
        return await asyncio.to_thread(self._get, dedupe_key)

    async def hits_of(self, message_id: int) -> list[HitRecord]:
        """The hits stored with an archived message, in span order."""
        return await asyncio.to_thread(self._hits_of, message_id)

    async def count(self) -> int:
        """Number of archived messages."""
        return await asyncio.to_thread(self._count)

    async def ping(self) -> None:
        """Raise :class:`StorageError` unless the database answers through the writer."""
        await self._writer.ping()

    def _get(self, dedupe_key: str) -> MessageRecord | None:
        try:
            with sqlmodel.Session(self._engine) as session:
                return session.exec(message_query(dedupe_key)).one_or_none()
        except SQLAlchemyError as exc:
            raise _read_error(exc) from exc

    def _hits_of(self, message_id: int) -> list[HitRecord]:
        try:
            with sqlmodel.Session(self._engine) as session:
                return list(session.exec(hits_query(message_id)).all())
        except SQLAlchemyError as exc:
            raise _read_error(exc) from exc

    def _count(self) -> int:
        try:
            with self._engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(_TABLE)).scalar_one())
        except SQLAlchemyError as exc:
            raise _read_error(exc) from exc


def _read_error(exc: Exception) -> StorageError:
    return StorageError(f"database read failed ({type(exc).__name__})")


def _row(record: InboundRecord, received_at: datetime) -> _Row:
    # Spelled out: dataclasses.asdict deep-copies every field and builds a dict, several times
    # slower, and this runs once per message on the event loop.
    return (
        record.dedupe_key,
        record.channel,
        record.msg_type,
        record.event,
        record.from_user,
        record.to_user,
        record.agent_id,
        record.create_time,
        record.content,
        record.raw,
        received_at,
        record.rules_version,
        record.conversation_id,
        record.direction,
    )


_Inserted = Sequence[Row[int, str]]  # (id, dedupe_key) of each row actually inserted


class _StoreInbound:
    """The :class:`~monitor.archive.writer.BulkOp` behind :meth:`Archive.store_inbound`.

    A batch is one multi-row ``INSERT ... ON CONFLICT (dedupe_key) DO NOTHING RETURNING id,
    dedupe_key`` (rows from ``VALUES`` on SQLite, from ``unnest`` of arrays on PostgreSQL: see
    :func:`_insert_rows`) and, only when some keys were already archived, one ``SELECT id,
    dedupe_key ... WHERE dedupe_key IN (...)`` for their ids.
    """

    def __init__(self, dialect: Dialect) -> None:
        self._insert = _insert_rows(dialect)
        self._insert_hit = insert(_HIT_TABLE)
        self._search_index = SearchIndexWriter(dialect)
        key = _TABLE.c.dedupe_key
        self._lookup = select(key, _TABLE.c.id).where(key.in_(bindparam("keys", expanding=True)))

    def execute(self, conn: Connection, items: Sequence[_Item]) -> list[StoreResult]:
        """Insert the new keys among ``items``; one :class:`StoreResult` per item, in order."""
        # Only each key's first row is sent: the first copy wins, and the statement never depends
        # on how the database treats a key repeated within one INSERT.
        first: dict[str, int] = {}  # dedupe key -> index of its first item
        rows: list[_Row] = []
        for index, (row, _hits, _effects) in enumerate(items):
            key = row[0]  # every row starts with its dedupe key
            if key not in first:
                first[key] = index
                rows.append(row)
        inserted: dict[str, int] = {}
        for start in range(0, len(rows), _PAGE_ROWS):
            inserted.update(
                {
                    key: new_id
                    for new_id, key in self._insert(conn, rows[start : start + _PAGE_ROWS])
                }
            )
        stored = inserted
        if len(inserted) < len(first):  # some were archived before (WeCom retries): find their ids
            missing = [key for key in first if key not in inserted]
            found = conn.execute(self._lookup, {"keys": missing})
            stored = {**inserted, **{key: message_id for key, message_id in found}}
        self._insert_hits(conn, items, first, inserted)
        # The search index row commits with its message (only for rows this batch inserted).
        self._search_index.add(
            conn,
            [(new_id, items[first[key]][0][_CONTENT_INDEX]) for key, new_id in inserted.items()],
        )
        _apply_effects(conn, items, first, inserted)
        if inserted:  # a batch of WeCom retries only inserts nothing, and adds no block
            chain_rows(conn, Chain.ARCHIVE, _entries(items, first, inserted))
        results: list[StoreResult] = []
        for index, (row, _hits, _effects) in enumerate(items):
            key = row[0]
            message_id = stored.get(key)
            if message_id is None:
                # Neither inserted nor found: the conflicting row was rolled back meanwhile. Fail
                # the batch; re-run alone, this item then inserts (or fails by itself).
                raise NoResultFound("a conflicting dedupe key is not in the archive")
            results.append(
                StoreResult(message_id, inserted=key in inserted and first[key] == index)
            )
        return results

    def _insert_hits(
        self,
        conn: Connection,
        items: Sequence[_Item],
        first: dict[str, int],
        inserted: dict[str, int],
    ) -> None:
        # Hits go in the message's transaction, only for messages this batch inserted (a retry's
        # hits were stored with its first delivery). Hits are rare, so a plain executemany will do.
        hit_rows = [
            {
                "message_id": inserted[row[0]],
                "word": hit.word,
                "rule_group": hit.group,
                "severity": hit.severity,
                "span_start": hit.start,
                "span_end": hit.end,
                "rules_version": row[_VERSION_INDEX],
                "via": hit.via,
                "parts": hit.parts_json(),
            }
            for key, index in first.items()
            if key in inserted
            for row, hits, _effects in (items[index],)
            for hit in hits
        ]
        if hit_rows:
            conn.execute(self._insert_hit, hit_rows)


def _entries(
    items: Sequence[_Item], first: dict[str, int], inserted: dict[str, int]
) -> list[Entry]:
    """The archive chain's entries of the messages this batch inserted, hits folded in."""
    entries: list[Entry] = []
    for key, message_id in inserted.items():
        row, hits, _effects = items[first[key]]
        version = row[_VERSION_INDEX]
        folded = [
            (h.word, h.group, h.severity, h.start, h.end, version, h.via, h.parts_json())
            for h in hits
        ]
        entries.append(Entry("message", message_id, message_digest(row, folded)))
    return entries


def _apply_effects(
    conn: Connection, items: Sequence[_Item], first: dict[str, int], inserted: dict[str, int]
) -> None:
    # Only for messages this batch inserted: a WeCom retry must not raise a second alert. Sorted
    # by order_key so two workers' batches take per-conversation locks in the same order.
    # ``now`` is the message's own received_at, so effects see the archive's (injectable) clock.
    pending = [
        (effect, inserted[key], items[index][0][_RECEIVED_INDEX])
        for key, index in first.items()
        if key in inserted
        for effect in items[index][2]
    ]
    pending.sort(key=lambda entry: entry[0].order_key)
    for effect, message_id, received_at in pending:
        effect.apply(conn, message_id, received_at)


def _insert_rows(dialect: Dialect) -> Callable[[Connection, Sequence[_Row]], _Inserted]:
    """The fastest correct multi-row insert for the engine's driver.

    Each is ONE statement and round trip per page of rows. SQLAlchemy's own multi-row rendering
    ("insertmanyvalues") costs ~65 µs of Python per row on psycopg (it re-parses the long query
    every time: psycopg caches only short ones) and ~18 µs on SQLite, so the two drivers in use
    get hand-written SQL; any other driver gets the Core statement.
    """
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        return _PostgresUnnestInsert(dialect)
    if dialect.name == "sqlite" and dialect.driver == "pysqlite":
        return _SqliteValuesInsert(dialect)
    return _CoreInsert(dialect)


def _bind_processors(dialect: Dialect) -> list[tuple[int, Callable[[Any], Any]]]:
    """(position in a row, converter) for the columns whose type converts values before binding.

    Driver-level SQL bypasses SQLAlchemy's type processing, so the hand-written inserts apply the
    very converters a Core statement would (e.g. ``received_at`` to naive UTC text on SQLite).
    """
    processors: list[tuple[int, Callable[[Any], Any]]] = []
    for index, name in enumerate(_COLUMNS):
        column_type = _TABLE.c[name].type
        processor = column_type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors.append((index, processor))
    return processors


def _returning_clause(dialect: Dialect) -> str:
    key, new_id = (dialect.identifier_preparer.quote(name) for name in ("dedupe_key", "id"))
    return f"ON CONFLICT ({key}) DO NOTHING RETURNING {new_id}, {key}"


def _insert_head(dialect: Dialect) -> str:
    quote = dialect.identifier_preparer.quote
    return f"INSERT INTO {quote(_TABLE.name)} ({', '.join(quote(name) for name in _COLUMNS)})"


class _SqliteValuesInsert:
    """``INSERT ... VALUES (?, ...), (?, ...) ... ON CONFLICT DO NOTHING RETURNING`` (qmark)."""

    def __init__(self, dialect: Dialect) -> None:
        self._head = _insert_head(dialect) + " VALUES "
        self._values = "(" + ", ".join(["?"] * len(_COLUMNS)) + ")"
        self._tail = " " + _returning_clause(dialect)
        self._processors = _bind_processors(dialect)

    def __call__(self, conn: Connection, rows: Sequence[_Row]) -> _Inserted:
        params: list[Any] = []
        processors = self._processors
        for row in rows:
            if processors:
                values = list(row)
                for index, processor in processors:
                    values[index] = processor(values[index])
                params.extend(values)
            else:
                params.extend(row)
        sql = self._head + ", ".join([self._values] * len(rows)) + self._tail
        return conn.exec_driver_sql(sql, tuple(params)).all()


class _PostgresUnnestInsert:
    """``INSERT ... SELECT * FROM unnest(%b::text[], ...) ON CONFLICT DO NOTHING RETURNING``.

    One array parameter per column instead of one parameter per value: the query text is the same
    for every batch, so psycopg parses it once and prepares it on the server, and binary arrays
    need no quoting. String columns travel as ``text[]`` so the INSERT's assignment cast still
    enforces their lengths (an explicit ``varchar(n)[]`` cast would truncate silently).
    """

    def __init__(self, dialect: Dialect) -> None:
        arrays = ", ".join(
            f"%b::{_pg_element_type(_TABLE.c[name].type, dialect)}[]" for name in _COLUMNS
        )
        self._sql = (
            f"{_insert_head(dialect)} SELECT * FROM unnest({arrays}) {_returning_clause(dialect)}"
        )
        self._processors = _bind_processors(dialect)

    def __call__(self, conn: Connection, rows: Sequence[_Row]) -> _Inserted:
        columns = [list(column) for column in zip(*rows, strict=True)]
        for index, processor in self._processors:
            columns[index] = [processor(value) for value in columns[index]]
        return conn.exec_driver_sql(self._sql, tuple(columns)).all()


def _pg_element_type(column_type: Any, dialect: Dialect) -> str:
    if isinstance(column_type.dialect_impl(dialect), String):
        return "text"
    return str(column_type.compile(dialect))


class _CoreInsert:
    """The Core statement; with several rows SQLAlchemy renders one multi-VALUES INSERT."""

    def __init__(self, dialect: Dialect) -> None:
        self._stmt = _insert_ignoring_duplicates(dialect)

    def __call__(self, conn: Connection, rows: Sequence[_Row]) -> _Inserted:
        params = [dict(zip(_COLUMNS, row, strict=True)) for row in rows]
        return conn.execute(self._stmt, params).all()


def _insert_ignoring_duplicates(dialect: Dialect) -> Insert:
    """``INSERT ... ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key`` (dialect's)."""
    stmt = insert_ignore(dialect, _TABLE, ["dedupe_key"])
    return stmt.returning(_TABLE.c.id, _TABLE.c.dedupe_key)
