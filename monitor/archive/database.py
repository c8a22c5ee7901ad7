"""Database engines: URL normalisation, durable SQLite/PostgreSQL settings.

The schema (alembic migrations, run at start-up) is :mod:`monitor.archive.schema`.

:class:`~monitor.archive.writer.GroupCommitWriter` (the group-commit writer) and its
:class:`~monitor.archive.writer.BulkOp` protocol live in ``monitor.archive.writer`` and are re-exported here.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from monitor.archive.writer import SQLITE_BEGIN_OPTION, BulkOp, GroupCommitWriter
from monitor.errors import StorageError

__all__ = [
    "BulkOp",
    "GroupCommitWriter",
    "make_engine",
    "normalize_url",
    "open_existing",
    "read_snapshot",
    "safe_reason",
]

_PG_CONNECT_TIMEOUT_S = 5
_WAL_SWITCH_TIMEOUT_S = 5.0


def normalize_url(url: str) -> str:
    """Point ``postgresql://`` and ``postgres://`` URLs at psycopg 3; leave others unchanged."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


def make_engine(url: str, *, sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL") -> Engine:
    """Create the sync SQLAlchemy engine for a SQLite file or PostgreSQL URL.

    Durability of a committed transaction:

    - SQLite runs in WAL mode. With ``synchronous=FULL`` (the default) every commit is fsynced:
      it survives ``kill -9`` and power loss / OS crashes. ``NORMAL`` fsyncs only at checkpoints:
      a commit survives a process crash (``kill -9``) but the last commits may be lost on power
      loss or an OS crash.
    - PostgreSQL, with its default ``synchronous_commit=on``, survives both.

    SQLite also gets ``busy_timeout=5000`` and ``foreign_keys=ON`` on every connection; PostgreSQL
    gets ``pool_pre_ping`` (a restarted server is reconnected transparently) and a 5 s connect
    timeout unless the URL sets one. In-memory SQLite is refused: it is not an archive.
    """
    sa_url = make_url(normalize_url(url))
    backend = sa_url.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(sa_url, sqlite_synchronous)
    if backend == "postgresql":
        connect_args = (
            {} if "connect_timeout" in sa_url.query else {"connect_timeout": _PG_CONNECT_TIMEOUT_S}
        )
        return create_engine(sa_url, pool_pre_ping=True, connect_args=connect_args)
    raise ValueError(f"unsupported database backend {backend!r} (use sqlite or postgresql)")


def open_existing(url: str) -> Engine:
    """:func:`make_engine` for a command that reads an archive: a SQLite file must exist already
    (reading a mistyped path must not create an empty archive).

    Raises:
        StorageError: the URL is not valid or not usable; the message never holds the URL.
    """
    try:
        sa_url = make_url(normalize_url(url))
    except ArgumentError:
        raise StorageError("not a valid database URL") from None
    if sa_url.get_backend_name() == "sqlite" and not Path(sa_url.database or "").exists():
        raise StorageError(f"there is no SQLite archive at {sa_url.database}")
    try:
        return make_engine(url)
    except (SQLAlchemyError, ValueError) as exc:
        raise StorageError(f"unusable ({exc.__class__.__name__})") from None


def read_snapshot(conn: Connection) -> Connection:
    """``conn``, set so that its next transaction reads one consistent snapshot throughout.

    SQLite gets that from its transaction (:func:`make_engine` issues a real BEGIN); PostgreSQL
    needs REPEATABLE READ (read-only, too).
    """
    if conn.dialect.name == "postgresql":
        conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    return conn


def safe_reason(exc: BaseException, url: str) -> str:
    """The first line of a driver's error, with the URL's password (if any) blanked out."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    text = (reason[0] if reason else type(exc).__name__)[:200]
    with contextlib.suppress(ArgumentError, ValueError):
        password = make_url(normalize_url(url)).password
        if password:
            text = text.replace(str(password), "***")
    return text


def _sqlite_engine(url: URL, synchronous: Literal["FULL", "NORMAL"]) -> Engine:
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"sqlite_synchronous must be FULL or NORMAL, not {synchronous!r}")
    database = url.database
    if not database or database == ":memory:" or url.query.get("mode") == "memory":
        raise ValueError("in-memory SQLite is not durable; give a file path")
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    pragmas = (
        "PRAGMA busy_timeout=5000",
        f"PRAGMA synchronous={synchronous}",
        "PRAGMA foreign_keys=ON",
    )

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite BEGINs lazily and only before DML; taking that over (SQLAlchemy's documented
        # recipe) makes begin() a real BEGIN, so reads inside a transaction are consistent too.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(pragma)
            _enable_wal(cursor)
        finally:
            cursor.close()

    def on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    return engine


def _enable_wal(cursor: Any) -> None:
    # Switching to WAL needs a moment of exclusive access and SQLite answers "database is locked"
    # at once, ignoring busy_timeout, while another connection (another worker starting up) holds
    # the file. The mode is persistent, so a file someone else already switched is fine as it is.
    deadline = time.monotonic() + _WAL_SWITCH_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            time.sleep(0.01)
