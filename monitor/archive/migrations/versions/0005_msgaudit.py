"""The conversation archive (会话内容存档): pull cursor, quarantine, media files.

Revision ID: 0005
Revises: 0004

Three new tables (``monitor.archive.msgaudit_models``), an index on stored media by content,
and ``alert.staff_name`` (the staff member's display name, "" on the rows stored before).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "msgaudit_cursor",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("fence", sa.Integer(), nullable=False),
        sa.Column("newest_msgtime", sa.BigInteger(), nullable=False),
        sa.Column("caught_up_at", _AT, nullable=True),
        sa.Column("keys_generation", sa.Integer(), nullable=False),
        sa.Column("lag_alerted_at", _AT, nullable=True),
        sa.Column("updated_at", _AT, nullable=False),
    )
    op.create_table(
        "msgaudit_quarantine",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("msgid", sa.Text(), nullable=False),
        sa.Column("publickey_ver", sa.Integer(), nullable=False),
        sa.Column("encrypt_random_key", sa.Text(), nullable=False),
        sa.Column("encrypt_chat_msg", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("errcode", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("last_tried_at", _AT, nullable=False),
        sa.Column("released_at", _AT, nullable=True),
    )
    op.create_index("ix_msgaudit_quarantine_released_at", "msgaudit_quarantine", ["released_at"])
    op.create_table(
        "media_file",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dedupe_key", sa.String(128), nullable=False),
        sa.Column("fileid_hash", sa.String(64), nullable=False),
        sa.Column("sdkfileid", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("md5", sa.String(32), nullable=False),
        sa.Column("announced_size", sa.BigInteger(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mime", sa.String(128), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("stored_at", _AT, nullable=True),
        sa.UniqueConstraint("dedupe_key", "fileid_hash", name="uq_media_file"),
    )
    op.create_index("ix_media_file_dedupe_key", "media_file", ["dedupe_key"])
    op.create_index("ix_media_file_status", "media_file", ["status"])
    op.create_index("ix_media_file_sha256", "media_file", ["sha256"])
    with op.batch_alter_table("alert") as batch:
        batch.add_column(sa.Column("staff_name", sa.String(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("alert") as batch:
        batch.drop_column("staff_name")
    op.drop_table("media_file")
    op.drop_table("msgaudit_quarantine")
    op.drop_table("msgaudit_cursor")
