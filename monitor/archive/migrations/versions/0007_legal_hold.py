"""Legal holds: conversations and staff members a retention purge keeps.

Revision ID: 0007
Revises: 0006

One new table (``monitor.archive.hold_models``); no existing row changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "legal_hold",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("value", sa.String(512), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("released_by", sa.String(64), nullable=True),
        sa.Column("released_at", _AT, nullable=True),
        sa.Column("release_reason", sa.Text(), nullable=True),
    )
    op.create_index("ix_legal_hold_scope_value", "legal_hold", ["scope", "value"])
    op.create_index("ix_legal_hold_released_at", "legal_hold", ["released_at"])


def downgrade() -> None:
    op.drop_table("legal_hold")
