"""Hits say how they were spelled (``via``) and, for a word split over messages, every piece.

Revision ID: 0004
Revises: 0003

``hit.via`` keeps the matcher's explanation (pinyin, homophone, ..., split) and ``hit.parts`` the
pieces of a split hit as JSON (dedupe key and span of each message), so a reviewer sees the
earlier messages a word was spread over, not only the one that completed it. Both are nullable:
rows stored before stay as they were.

The hash chain folds both into a message's digest only when set (``monitor.archive.chain``), so the
blocks written before this revision still verify.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
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
