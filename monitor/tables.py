"""The declarative base of every table (archive, alerts, kf, sandbox) and its column types.

At the top of ``monitor`` so that ``monitor.archive`` and ``monitor.alerts`` both declare tables
without importing each other's packages.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from sqlalchemy import DateTime, Dialect, Table
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

__all__ = ["TableModel", "UTCDateTime"]


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite has no timezone type and hands back naive values; PostgreSQL's ``timestamptz`` answers
    in the session's time zone. Both are normalised so callers always get an aware UTC datetime.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        value = value.astimezone(UTC)
        # SQLite would store the offset as text and then fail to compare it; store naive UTC there.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class TableModel(SQLModel):
    """Base of every archive table model (declared ``class X(TableModel, table=True)``).

    SQLModel builds each table's Core :class:`~sqlalchemy.Table` and sets it as ``__table__``
    without declaring it; declared here, Core statements use ``X.__table__`` fully typed.
    """

    __table__: ClassVar[Table]
