"""The full-text search index of archived messages (``monitor.archive.search_index``).

Revision ID: 0006
Revises: 0005

Creates ``message_search`` (a tsvector table with a GIN index on PostgreSQL, a contentless FTS5
table on SQLite) and indexes every message already archived, in batches keyed by id, on the
upgrade's transaction: the upgrade commits with a complete index or not at all, and no message
row is changed. Adds ``ix_message_from_user`` for the search's staff and customer filters.
"""

from __future__ import annotations

from alembic import op

from monitor.archive.search_index import backfill, create_index_objects, drop_index_objects

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    op.create_index("ix_message_from_user", "message", ["from_user"])
    create_index_objects(bind)
    backfill(bind)


def downgrade() -> None:
    drop_index_objects(op.get_bind())
    op.drop_index("ix_message_from_user", table_name="message")
