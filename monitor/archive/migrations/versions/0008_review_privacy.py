"""Review privacy: the secrets the review web keeps in the database.

Revision ID: 0008
Revises: 0007

``review_secret`` holds keys generated once and shared by every worker: the pseudonym key when
``[review] pseudonym_key`` (env ``REVIEW_PSEUDONYM_KEY``) is not set, and the key that orders
conversations for sampling (抽检). New table only: no existing row changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_table(
        "review_secret",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("review_secret")
