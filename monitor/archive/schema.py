"""The archive schema: alembic migrations (``monitor/archive/migrations``), run to head at start-up.

Every worker of ``serve --workers N`` runs :func:`create_schema` as it starts, so the upgrade is
serialised: ONE transaction takes a lock (PostgreSQL: an advisory lock on a fixed key; SQLite:
``BEGIN IMMEDIATE``, the database's write lock), reads the revision and runs the migrations. The
other workers wait for it, then find the database at head.

- An empty database is brought to head.
- A database made before migrations (the tables, no ``alembic_version``) is kept with its rows:
  the baseline revision 0001 creates only the tables it lacks, then alembic stamps it 0001.
- A database at a revision this code does not know (a newer version upgraded it) is refused
  with :class:`~monitor.errors.SchemaMismatch`, before anything is written.
- A database at head that lacks one of the head's tables (dropped by hand) gets it back from the
  models, which describe the head schema exactly (``tests/unit/monitor/test_migrations.py``).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, MetaData, inspect, text
from sqlmodel import SQLModel

from monitor.alerts import models as _alert_models  # noqa: F401  (registers the alert tables)
from monitor.archive import audit as _audit  # noqa: F401  (the audit_event table, likewise)
from monitor.archive import chain_models as _chain_models  # noqa: F401  (the hash chain's tables)
from monitor.archive import hold_models as _hold_models  # noqa: F401  (legal holds)
from monitor.archive import kf_models as _kf_models  # noqa: F401  (the kf tables, likewise)
from monitor.archive import models as _models  # noqa: F401  (the message and hit tables)
from monitor.archive import msgaudit_models as _msgaudit_models  # noqa: F401  (archive pull)
from monitor.archive import sandbox_log as _sandbox_log  # noqa: F401  (the sandbox_call table)
from monitor.archive.writer import SQLITE_BEGIN_OPTION
from monitor.errors import SchemaMismatch
from monitor.log import storage_log
from monitor.review import models as _review_models  # noqa: F401  (accounts, sessions, notes)
from monitor.review import proposal_models as _proposal_models  # noqa: F401  (allow proposals)
from monitor.review import review_secrets as _review_secrets  # noqa: F401  (generated keys)

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

# alembic is imported where it is used: it takes ~0.1 s to import, and every command of run_bot.py
# imports the archive package, most of them without touching the schema.

__all__ = [
    "METADATA",
    "MIGRATIONS_DIR",
    "SchemaUpgrade",
    "alembic_config",
    "create_schema",
    "head_revision",
    "upgrade_schema",
]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
"""alembic's script location: ``env.py``, ``script.py.mako`` and ``versions/``."""

METADATA: MetaData = SQLModel.metadata
"""Every archive table as the models declare them: the schema at the head revision."""

_SCHEMA_LOCK_KEY = 0x5E17_0001  # PostgreSQL advisory lock id guarding the upgrade
_ALEMBIC_LOCK = threading.Lock()
"""alembic's ``context`` and ``op`` are module-level proxies: one migration run per process at a
time, even for two databases (the database's own lock orders runs on one database)."""


@dataclass(frozen=True, slots=True)
class SchemaUpgrade:
    """What :func:`upgrade_schema` found, and the revision it left the database at."""

    before: str | None
    """The revision before; None when the database had no ``alembic_version`` table."""
    made_before_migrations: bool
    """It had no revision but held archive tables: they were kept, with their rows."""
    after: str
    """The revision now: the head."""


def alembic_config(url: str | None = None) -> Config:
    """The alembic configuration, made in code (no alembic.ini).

    ``url`` (``sqlalchemy.url``) lets ``env.py`` connect by itself, for alembic's own commands
    (``command.revision(..., autogenerate=True)``); :func:`upgrade_schema` hands over its
    connection instead.
    """
    from alembic.config import Config  # noqa: PLC0415  (see the imports above)

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # configparser syntax
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision this code knows."""
    head = _scripts().get_current_head()
    if head is None:  # only with an empty versions/ folder
        raise RuntimeError(f"no migrations in {MIGRATIONS_DIR}")
    return head


def create_schema(engine: Engine) -> None:
    """Bring the database's schema to head; safe to race from N workers.

    Raises:
        SchemaMismatch: a newer version upgraded the database, or it was made before migrations
            by a version whose tables lack columns.
        sqlalchemy.exc.SQLAlchemyError: the database failed (e.g. it is unreachable).
    """
    upgrade_schema(engine)


def upgrade_schema(engine: Engine) -> SchemaUpgrade:
    """:func:`create_schema`, saying which revision the database was at and is at now."""
    head = head_revision()
    locked = engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
    with locked.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
        before = _revision(conn, head)
        present = set(inspect(conn).get_table_names())
        made_before_migrations = before is None and not present.isdisjoint(METADATA.tables)
        if before != head:
            from alembic import command  # noqa: PLC0415

            config = alembic_config()
            config.attributes["connection"] = conn  # env.py runs the migrations on it
            with _ALEMBIC_LOCK:
                command.upgrade(config, head)
            present = set(inspect(conn).get_table_names())
            storage_log.info("archive schema upgraded from %s to %s", before or "none", head)
        _restore_missing_tables(conn, present)
    return SchemaUpgrade(before, made_before_migrations, head)


def _revision(conn: Connection, head: str) -> str | None:
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415

    heads = MigrationContext.configure(conn).get_current_heads()
    if not heads:
        return None
    known = {script.revision for script in _scripts().walk_revisions()}
    unknown = [revision for revision in heads if revision not in known]
    if unknown:
        raise SchemaMismatch(
            f"the database is at schema revision {', '.join(unknown)}, which this version of "
            f"wecom-sentinel does not know (its newest is {head}): a newer version upgraded it; "
            "run that version"
        )
    return heads[0]  # one line of revisions: no branches


def _restore_missing_tables(conn: Connection, present: set[str]) -> None:
    missing = [table for table in METADATA.sorted_tables if table.name not in present]
    if missing:
        storage_log.warning(
            "archive tables missing at head, created again: %s", ", ".join(t.name for t in missing)
        )
        METADATA.create_all(conn, tables=missing, checkfirst=False)
