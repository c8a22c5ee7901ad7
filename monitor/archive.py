"""The message archive: idempotent, group-committed stores of inbound messages."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import sqlmodel
from sqlalchemy import Connection, Insert, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from monitor.errors import StorageError
from monitor.models import DEDUPE_KEY_MAX, InboundRecord, MessageRecord
from monitor.writer import GroupCommitWriter

__all__ = ["Archive", "StoreResult"]

_TABLE: Table = MessageRecord.__table__  # type: ignore[attr-defined]  # set by the metaclass


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
        self._insert = _insert_ignoring_duplicates(self._engine.dialect.name)

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
        values = asdict(record)
        values["received_at"] = self._clock()
        insert = self._insert

        def work(conn: Connection) -> StoreResult:
            new_id = conn.execute(insert, values).scalar_one_or_none()
            if new_id is not None:
                return StoreResult(message_id=new_id, inserted=True)
            existing = conn.execute(
                select(_TABLE.c.id).where(_TABLE.c.dedupe_key == key)
            ).scalar_one()
            return StoreResult(message_id=existing, inserted=False)

        return await self._writer.run(work)

    async def get(self, dedupe_key: str) -> MessageRecord | None:
        """The archived message with this dedupe key, or None."""
        return await asyncio.to_thread(self._get, dedupe_key)

    async def count(self) -> int:
        """Number of archived messages."""
        return await asyncio.to_thread(self._count)

    async def ping(self) -> None:
        """Raise :class:`StorageError` unless the database answers through the writer."""
        await self._writer.ping()

    def _get(self, dedupe_key: str) -> MessageRecord | None:
        stmt = sqlmodel.select(MessageRecord).where(MessageRecord.dedupe_key == dedupe_key)
        try:
            with sqlmodel.Session(self._engine) as session:
                return session.exec(stmt).one_or_none()
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


def _insert_ignoring_duplicates(dialect: str) -> Insert:
    """``INSERT ... ON CONFLICT (dedupe_key) DO NOTHING RETURNING id`` in the engine's dialect."""
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(_TABLE).on_conflict_do_nothing(index_elements=["dedupe_key"])
    elif dialect == "sqlite":
        stmt = sqlite.insert(_TABLE).on_conflict_do_nothing(index_elements=["dedupe_key"])
    else:
        raise ValueError(f"the archive supports sqlite and postgresql, not {dialect!r}")
    return stmt.returning(_TABLE.c.id)  # type: ignore[no-any-return]
