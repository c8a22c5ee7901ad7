"""Hits say how they were spelled (``via``) and, for a word split over messages, every piece.

Revision ID: 0003b
Revises: 0002

``hit.via`` keeps the matcher's explanation (pinyin, homophone, ..., split) and ``hit.parts`` the
pieces of a split hit as JSON (dedupe key and span of each message), so a reviewer sees the
earlier messages a word was spread over, not only the one that completed it. Both are nullable:
rows stored before stay as they were.

Written on a branch beside revision 0003 (the hash chain), which also revises 0002: whoever merges
the two chains this one after 0003 (``down_revision = "0003"``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003b"
down_revision: str | None = "0002"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hit") as batch:
        batch.add_column(sa.Column("via", sa.String(), nullable=True))
        batch.add_column(sa.Column("parts", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hit") as batch:
        batch.drop_column("parts")
        batch.drop_column("via")
