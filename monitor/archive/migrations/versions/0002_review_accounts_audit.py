"""Review web: reviewer accounts, sessions, failed logins, case notes, and one audit table.

Revision ID: 0002
Revises: 0001

``alert_audit`` (card clicks) becomes part of the general ``audit_event`` trail: its rows are
copied over (the alert id as the target, before/after as the JSON detail), then it is dropped.
A downgrade copies the alert actions back.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    audit = op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", _AT, nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("address", sa.String(), nullable=False),
    )
    op.create_index("ix_audit_event_at", "audit_event", ["at"])
    op.create_index("ix_audit_event_target", "audit_event", ["target"])
    op.create_table(
        "reviewer",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("last_login_at", _AT, nullable=True),
    )
    op.create_table(
        "review_session",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("csrf_token", sa.String(), nullable=False),
        sa.Column("address", sa.String(), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("last_seen_at", _AT, nullable=False),
    )
    op.create_index("ix_review_session_username", "review_session", ["username"])
    op.create_index("ix_review_session_last_seen_at", "review_session", ["last_seen_at"])
    op.create_table(
        "login_failure",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("at", _AT, nullable=False),
    )
    op.create_index("ix_login_failure_key_at", "login_failure", ["key", "at"])
    op.create_table(
        "case_note",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("alert_id", sa.String(128), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("at", _AT, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
    )
    op.create_index("ix_case_note_alert_id", "case_note", ["alert_id"])

    bind = op.get_bind()
    old = sa.Table("alert_audit", sa.MetaData(), autoload_with=bind)
    rows = [
        {
            "at": row.at,
            "actor": row.user,
            "source": row.source,
            "action": row.action,
            "target": row.alert_id,
            "detail": json.dumps(
                {"before": row.before, "after": row.after}, ensure_ascii=False, sort_keys=True
            ),
            "address": "",
        }
        for row in bind.execute(sa.select(old).order_by(old.c.id))
    ]
    if rows:
        bind.execute(sa.insert(audit), rows)
    op.drop_index("ix_alert_audit_alert_id", table_name="alert_audit")
    op.drop_table("alert_audit")


def downgrade() -> None:
    old = op.create_table(
        "alert_audit",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("alert_id", sa.String(128), nullable=False),
        sa.Column("user", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("at", _AT, nullable=False),
        sa.Column("before", sa.String(), nullable=False),
        sa.Column("after", sa.String(), nullable=False),
    )
    op.create_index("ix_alert_audit_alert_id", "alert_audit", ["alert_id"])
    bind = op.get_bind()
    audit = sa.Table("audit_event", sa.MetaData(), autoload_with=bind)
    rows = []
    for row in bind.execute(sa.select(audit).order_by(audit.c.id)):
        detail = json.loads(row.detail or "{}")
        if "before" in detail and "after" in detail and row.target:
            rows.append(
                {
                    "alert_id": row.target,
                    "user": row.actor,
                    "action": row.action,
                    "source": row.source,
                    "at": row.at,
                    "before": detail["before"],
                    "after": detail["after"],
                }
            )
    if rows:
        bind.execute(sa.insert(old), rows)
    for table in ("case_note", "login_failure", "review_session", "reviewer", "audit_event"):
        op.drop_table(table)
