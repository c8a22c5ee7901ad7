"""Baseline: the archive schema as it was when migrations began (every table, index, constraint).

Revision ID: 0001
Revises: (none)

A database made before migrations (``create_all``, no ``alembic_version`` table) starts here too:
its tables are kept as they are, with their rows, and only the tables it lacks are created. A
table of it that lacks a column of this schema is refused (:class:`SchemaMismatch`): such a
database comes from a version older than any migration and cannot be brought up to date.

The tables are spelled out here rather than taken from the models, so this revision stays what it
is while the models move on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.errors import SchemaMismatch

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

_META = sa.MetaData()

sa.Table(
    "message",
    _META,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("dedupe_key", sa.String(128), nullable=False),
    sa.Column("channel", sa.String(), nullable=False),
    sa.Column("msg_type", sa.String(), nullable=False),
    sa.Column("event", sa.String(), nullable=True),
    sa.Column("from_user", sa.String(), nullable=False),
    sa.Column("to_user", sa.String(), nullable=False),
    sa.Column("agent_id", sa.String(), nullable=True),
    sa.Column("create_time", sa.Integer(), nullable=False),
    sa.Column("content", sa.Text(), nullable=True),
    sa.Column("raw", sa.Text(), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("rules_version", sa.String(), nullable=True),
    sa.Column("conversation_id", sa.String(), nullable=True),
    sa.Column("direction", sa.String(), nullable=True),
    sa.Index("ix_message_dedupe_key", "dedupe_key", unique=True),
    sa.Index("ix_message_received_at", "received_at"),
    sa.Index("ix_message_conversation_id", "conversation_id"),
)

sa.Table(
    "hit",
    _META,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("message_id", sa.Integer(), sa.ForeignKey("message.id"), nullable=False),
    sa.Column("word", sa.String(), nullable=False),
    sa.Column("rule_group", sa.String(), nullable=False),
    sa.Column("severity", sa.Integer(), nullable=False),
    sa.Column("span_start", sa.Integer(), nullable=False),
    sa.Column("span_end", sa.Integer(), nullable=False),
    sa.Column("rules_version", sa.String(), nullable=False),
    sa.Index("ix_hit_message_id", "message_id"),
)

sa.Table(
    "alert",
    _META,
    sa.Column("alert_id", sa.String(128), primary_key=True),
    sa.Column("conversation_id", sa.String(), nullable=False),
    sa.Column("kind", sa.String(), nullable=False),
    sa.Column("severity", sa.Integer(), nullable=False),
    sa.Column("words", sa.Text(), nullable=False),
    sa.Column("count", sa.Integer(), nullable=False),
    sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("latest_text", sa.Text(), nullable=False),
    sa.Column("latest_message_id", sa.Integer(), nullable=True),
    sa.Column("recipients", sa.Text(), nullable=False),
    sa.Column("customer_id", sa.String(), nullable=False),
    sa.Column("customer_name", sa.String(), nullable=False),
    sa.Column("staff_userid", sa.String(), nullable=False),
    sa.Column("status", sa.String(), nullable=False),
    sa.Column("claimed_by", sa.String(), nullable=False),
    sa.Column("closed_by", sa.String(), nullable=False),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("escalated", sa.Boolean(), nullable=False),
    sa.Column("notified_severity", sa.Integer(), nullable=False),
    sa.Column("cards_sent", sa.Integer(), nullable=False),
    sa.Column("rules_version", sa.String(), nullable=False),
    sa.Index("ix_alert_conversation_kind", "conversation_id", "kind", "last_at"),
    sa.Index("ix_alert_status", "status"),
)

sa.Table(
    "alert_message",
    _META,
    sa.Column("alert_id", sa.String(128), sa.ForeignKey("alert.alert_id"), primary_key=True),
    sa.Column("message_id", sa.Integer(), sa.ForeignKey("message.id"), primary_key=True),
    sa.Index("ix_alert_message_message_id", "message_id"),
)

sa.Table(
    "outbox",
    _META,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("alert_id", sa.String(128), nullable=True),
    sa.Column("kind", sa.String(), nullable=False),
    sa.Column("recipients", sa.Text(), nullable=False),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Column("task_id", sa.String(128), nullable=True),
    sa.Column("status", sa.String(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("lease_owner", sa.String(), nullable=True),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("delivered_to", sa.Text(), nullable=True),
    sa.Column("response_code", sa.Text(), nullable=True),
    sa.Column("response_code_used", sa.Boolean(), nullable=False),
    sa.Index("ix_outbox_due", "status", "next_at"),
    sa.Index("ix_outbox_alert_id", "alert_id"),
)

sa.Table(
    "recipient_send",
    _META,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("recipient", sa.String(), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("outbox_id", sa.Integer(), nullable=False),
    sa.Index("ix_recipient_send_recent", "recipient", "sent_at"),
)

sa.Table(
    "held_alert",
    _META,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("recipient", sa.String(), nullable=False),
    sa.Column("alert_id", sa.String(128), nullable=False),
    sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("digest_id", sa.Integer(), nullable=False),
    sa.Index("ix_held_alert_recipient", "recipient"),
    sa.Index("ix_held_alert_digest_id", "digest_id"),
)

sa.Table(
    "alert_audit",
    _META,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("alert_id", sa.String(128), nullable=False),
    sa.Column("user", sa.String(), nullable=False),
    sa.Column("action", sa.String(), nullable=False),
    sa.Column("source", sa.String(), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("before", sa.String(), nullable=False),
    sa.Column("after", sa.String(), nullable=False),
    sa.Index("ix_alert_audit_alert_id", "alert_id"),
)

sa.Table(
    "kf_cursor",
    _META,
    sa.Column("open_kfid", sa.String(128), primary_key=True),
    sa.Column("cursor", sa.String(), nullable=False),
    sa.Column("fence", sa.Integer(), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

sa.Table(
    "kf_customer",
    _META,
    sa.Column("open_kfid", sa.String(128), primary_key=True),
    sa.Column("external_userid", sa.String(128), primary_key=True),
    sa.Column("last_customer_at", sa.Integer(), nullable=False),
    sa.Column("unanswered", sa.Integer(), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

sa.Table(
    "kf_reply",
    _META,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("msgid", sa.String(32), nullable=False, unique=True),
    sa.Column("open_kfid", sa.String(128), nullable=False),
    sa.Column("external_userid", sa.String(128), nullable=False),
    sa.Column("in_reply_to", sa.Text(), nullable=False),
    sa.Column("kind", sa.String(), nullable=False),
    sa.Column("rule", sa.String(), nullable=False),
    sa.Column("msgtype", sa.String(), nullable=False),
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("window_start", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(), nullable=False),
    sa.Column("error", sa.String(), nullable=False),
    sa.Column("fail_type", sa.Integer(), nullable=True),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_kf_reply_customer", "open_kfid", "external_userid", "status"),
    sa.Index("ix_kf_reply_status", "status"),
)

sa.Table(
    "kf_decision",
    _META,
    sa.Column("dedupe_key", sa.String(128), primary_key=True),
    sa.Column("open_kfid", sa.String(128), nullable=False),
    sa.Column("external_userid", sa.String(128), nullable=False),
    sa.Column("outcome", sa.String(), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
)

sa.Table(
    "message_flag",
    _META,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("dedupe_key", sa.String(128), nullable=False),
    sa.Column("flag", sa.String(), nullable=False),
    sa.Column("detail", sa.String(), nullable=False),
    sa.Column("source_key", sa.String(128), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("dedupe_key", "flag", name="uq_message_flag"),
    sa.Index("ix_message_flag_dedupe_key", "dedupe_key"),
)

sa.Table(
    "sandbox_call",
    _META,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("path", sa.String(), nullable=False),
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("answer", sa.Text(), nullable=False),
)


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    present = set(inspector.get_table_names())
    for table in _META.sorted_tables:
        if table.name in present:
            columns = {column["name"] for column in inspector.get_columns(table.name)}
            missing = sorted(c.name for c in table.columns if c.name not in columns)
            if missing:
                raise SchemaMismatch(
                    f"table {table.name!r} lacks column(s) {', '.join(missing)}: the database "
                    "was created by an older version of wecom-sentinel; migrate it or start "
                    "with a new one"
                )
    absent = [table for table in _META.sorted_tables if table.name not in present]
    _META.create_all(bind, tables=absent, checkfirst=False)


def downgrade() -> None:
    _META.drop_all(op.get_bind())
