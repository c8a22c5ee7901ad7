"""The send sandbox's log: outbound WeCom calls that were recorded instead of sent.

With no WeCom secret configured the bot answers its own API calls (``bot.sandbox.transport``) and records
each one here, so the ``/sandbox/`` page of any worker shows what every worker "sent". Records
hold the API path, the JSON body and the answer; never a token or robot key.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, Text, insert
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Field, Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from monitor.archive.writer import GroupCommitWriter
from monitor.errors import StorageError
from monitor.tables import TableModel, UTCDateTime

__all__ = ["SandboxCall", "SandboxLog"]


class SandboxCall(TableModel, table=True):
    """One API call the sandbox accepted, with the answer it gave."""

    __tablename__ = "sandbox_call"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime)
    path: str
    """API path under ``/cgi-bin/``, e.g. ``message/send`` (no query: it holds the credential)."""
    body: str = Field(sa_type=Text)
    """The request body as JSON text (``ensure_ascii=False``)."""
    answer: str = Field(sa_type=Text)
    """The sandbox's answer as JSON text."""


_TABLE: Table = SandboxCall.__table__


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False)


class SandboxLog:
    """Records sandbox calls through a :class:`GroupCommitWriter` and reads them back.

    ``clock`` gives ``at`` when :meth:`record` is not handed one (an aware UTC datetime).
    """

    def __init__(
        self, writer: GroupCommitWriter, *, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self._writer = writer
        self._engine = writer.engine
        self._clock = clock

    @property
    def engine(self) -> Engine:
        """The database the calls are recorded in (other read-only views use it too)."""
        return self._engine

    async def record(
        self,
        path: str,
        body: Mapping[str, Any],
        answer: Mapping[str, Any],
        *,
        at: datetime | None = None,
    ) -> int:
        """Store one call once committed; returns its id.

        Raises:
            StorageError: the database failed (``WriterClosed`` when shutting down).
        """
        values = {
            "at": at if at is not None else self._clock(),
            "path": path,
            "body": _json(body),
            "answer": _json(answer),
        }
        stmt = insert(_TABLE).values(values).returning(_TABLE.c.id)

        def work(conn: Connection) -> int:
            return int(conn.execute(stmt).scalar_one())

        return await self._writer.run(work)

    async def recent(self, limit: int = 50) -> list[SandboxCall]:
        """The ``limit`` latest calls, newest first."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        query = select(SandboxCall).order_by(col(SandboxCall.id).desc()).limit(limit)
        return await asyncio.to_thread(self._read, query)

    async def since(self, call_id: int, limit: int = 500) -> list[SandboxCall]:
        """Calls with an id above ``call_id``, oldest first (at most ``limit``), for polling.

        Ids come from the database in insertion order; with several writers a call may commit
        just after a later id was read, so a poller can rarely miss one (it is a demo page).
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        query = (
            select(SandboxCall)
            .where(col(SandboxCall.id) > call_id)
            .order_by(col(SandboxCall.id))
            .limit(limit)
        )
        return await asyncio.to_thread(self._read, query)

    def _read(self, query: SelectOfScalar[SandboxCall]) -> list[SandboxCall]:
        try:
            with Session(self._engine) as session:
                return list(session.exec(query).all())
        except SQLAlchemyError as exc:
            raise StorageError(f"database read failed ({type(exc).__name__})") from exc
