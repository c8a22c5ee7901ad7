"""Allow-list proposals from false positives, and an index on hits by group.

Revision ID: 0009
Revises: 0008

``allow_proposal`` (``monitor.review.proposal_models``): a phrase a reviewer proposed for a
group's allow-list, until an admin confirms or rejects it. ``ix_hit_rule_group_id`` lets the
backtest page through one group's hits newest first without reading the others.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "allow_proposal",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("rule_group", sa.String(), nullable=False),
        sa.Column("phrase", sa.String(), nullable=False),
        sa.Column("alert_id", sa.String(128), nullable=False),
        sa.Column("rule_file", sa.Text(), nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("backtest", sa.Text(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("proposed_by", sa.String(64), nullable=False),
        sa.Column("proposed_at", _AT, nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=False),
        sa.Column("decided_at", _AT, nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("sha256_after", sa.String(64), nullable=False),
    )
    op.create_index("ix_allow_proposal_status", "allow_proposal", ["status"])
    op.create_index("ix_hit_rule_group_id", "hit", ["rule_group", "id"])


def downgrade() -> None:
    op.drop_index("ix_hit_rule_group_id", table_name="hit")
    op.drop_table("allow_proposal")
