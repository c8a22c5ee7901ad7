"""The alembic environment of the archive schema, configured in code (no alembic.ini).

:func:`monitor.archive.schema.upgrade_schema` runs it with its own connection in
``config.attributes["connection"]``, already inside the transaction that holds the schema lock:
the migrations run in that transaction and commit with it.

Given a ``sqlalchemy.url`` instead, it connects by itself: that is how the next revision is
written. Change the models, then bring a scratch database to head with the migrations and let
alembic compare it with the models (revision ids are numbered: 0001, 0002, ...):

    .venv/bin/python - <<'EOF'
    from alembic import command
    from monitor.archive.schema import alembic_config
    config = alembic_config("sqlite:///scratch.db")
    command.upgrade(config, "head")
    command.revision(config, "what changed", autogenerate=True, rev_id="0002")
    EOF

Review what it wrote (``versions/0002_*.py``): autogenerate misses renames and data moves. SQLite
alters tables through alembic's batch mode (copy and swap), which ``render_as_batch`` turns on.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlalchemy import Connection
from sqlmodel.sql.sqltypes import AutoString

from monitor.archive.database import make_engine
from monitor.archive.schema import METADATA
from monitor.tables import UTCDateTime


def render_item(kind: str, obj: Any, _autogen_context: Any) -> str | Literal[False]:
    """Spell the models' column types as plain SQLAlchemy ones in generated revisions."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if kind == "type" and isinstance(obj, AutoString):
        return f"sa.String({obj.length or ''})"
    return False


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=METADATA,
        render_as_batch=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("give alembic a connection or a sqlalchemy.url (alembic_config(url))")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            run_migrations(conn)
            conn.commit()
    finally:
        engine.dispose()


main()
