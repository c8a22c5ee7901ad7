"""The logic behind ``run_bot.py db upgrade`` (run_bot.py only parses arguments).

Applies the schema migrations (:func:`monitor.archive.schema.upgrade_schema`, which start-up runs
too) and prints the revision before and after::

    database was at revision none (empty database)
    database at revision 0001 (head)

Exit codes: 0 the database is at head; 1 it could not be reached or used, or a newer version of
wecom-sentinel upgraded it: one line on stderr says which. It names ``[storage].database_url``
and never prints the URL, which may carry a password.
"""

from __future__ import annotations

from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError

from monitor.archive.database import make_engine
from monitor.archive.schema import SchemaUpgrade, upgrade_schema
from monitor.errors import SchemaMismatch

__all__ = ["EXIT_FAILED", "EXIT_OK", "describe_before", "upgrade_command"]

EXIT_OK = 0
EXIT_FAILED = 1


def describe_before(upgrade: SchemaUpgrade) -> str:
    """The revision the database was at, in words (``0001``, ``none (empty database)``, ...)."""
    if upgrade.before is not None:
        return upgrade.before
    if upgrade.made_before_migrations:
        return "none (tables made before migrations, kept with their rows)"
    return "none (empty database)"


def upgrade_command(database_url: str, *, stdout: TextIO, stderr: TextIO) -> int:
    """Bring the database at ``database_url`` to head; returns the exit code."""
    try:
        engine = make_engine(database_url)
    except (SQLAlchemyError, OSError, ValueError) as exc:
        print(f"error: [storage].database_url: unusable ({exc.__class__.__name__})", file=stderr)
        return EXIT_FAILED
    try:
        upgrade = upgrade_schema(engine)
    except SchemaMismatch as exc:
        print(f"error: [storage].database_url: {exc}", file=stderr)
        return EXIT_FAILED
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:200]
        print(
            f"error: [storage].database_url: cannot connect to the database ({reason})",
            file=stderr,
        )
        return EXIT_FAILED
    finally:
        engine.dispose()
    print(f"database was at revision {describe_before(upgrade)}", file=stdout)
    print(f"database at revision {upgrade.after} (head)", file=stdout)
    return EXIT_OK
