"""``INSERT ... ON CONFLICT`` on either backend: the dialect's insert, insert-ignore, upsert.

PostgreSQL and SQLite spell ``ON CONFLICT`` alike, but SQLAlchemy builds it only from each
dialect's own ``insert``; these helpers pick that by the connection's dialect, so stores never do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Dialect, Table
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["DialectInsert", "dialect_insert", "insert_ignore", "upsert"]

DialectInsert = postgresql.Insert | sqlite.Insert
"""An INSERT that can take an ``ON CONFLICT`` clause (either backend's)."""


def dialect_insert(dialect: Dialect, table: Table) -> DialectInsert:
    """``INSERT INTO table`` as the dialect builds it (for ``on_conflict_do_*``).

    Raises:
        ValueError: a backend other than PostgreSQL or SQLite.
    """
    if dialect.name == "postgresql":
        return postgresql.insert(table)
    if dialect.name == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"the archive supports sqlite and postgresql, not {dialect.name!r}")


def insert_ignore(dialect: Dialect, table: Table, keys: Sequence[str]) -> DialectInsert:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING``: a row whose key is stored is skipped."""
    return dialect_insert(dialect, table).on_conflict_do_nothing(index_elements=keys)


def upsert(
    dialect: Dialect, table: Table, keys: Sequence[str], set_: Mapping[str, Any]
) -> DialectInsert:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE SET set_``; the row's values come with ``.values``.

    ``set_`` maps column names to new values or expressions (``table.c.n + 1``).
    """
    return dialect_insert(dialect, table).on_conflict_do_update(index_elements=keys, set_=set_)
