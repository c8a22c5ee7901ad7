"""Alert tables (SQLModel): alerts, their outbox, and per-recipient send history.

Written in the same transaction as the message that raised them (see ``monitor.alerts.intake``), so an
acknowledged message always has its alert persisted; ``monitor.alerts.outbox`` delivers from here.
Lists (words, recipients) are stored as JSON text: they are read and written whole, never queried.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Text
from sqlmodel import Field

from monitor.tables import TableModel, UTCDateTime

__all__ = [
    "AlertMessageLink",
    "AlertRecord",
    "HeldAlertRecord",
    "OutboxKind",
    "OutboxRecord",
    "OutboxStatus",
    "RecipientSendRecord",
]


class OutboxKind:
    """What an outbox row sends (plain constants: stored as text)."""

    CARD = "card"
    ESCALATION = "escalation"
    ROBOT = "robot"
    DIGEST = "digest"
    CARD_UPDATE = "card_update"


class OutboxStatus:
    """Life of an outbox row."""

    PENDING = "pending"
    SENT = "sent"
    #: Given up: a configuration error, or retries exhausted. ``last_error`` says why.
    FAILED = "failed"
    #: Nothing left to send (e.g. every recipient was rate-limited into a digest).
    SKIPPED = "skipped"


class AlertRecord(TableModel, table=True):
    """One alert: a conversation, a kind, one aggregation window (``monitor.alerts.policy.OpenAlert``)."""

    __tablename__ = "alert"
    __table_args__ = (Index("ix_alert_conversation_kind", "conversation_id", "kind", "last_at"),)

    alert_id: str = Field(primary_key=True, max_length=128)
    conversation_id: str
    kind: str
    severity: int
    words: str = Field(sa_type=Text)
    count: int
    first_at: datetime = Field(sa_type=UTCDateTime)
    last_at: datetime = Field(sa_type=UTCDateTime)
    latest_text: str = Field(sa_type=Text)
    latest_message_id: int | None = None
    recipients: str = Field(sa_type=Text)
    customer_id: str = ""
    customer_name: str = ""
    staff_userid: str = ""
    status: str = Field(index=True)
    claimed_by: str = ""
    closed_by: str = ""
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    escalated: bool = False
    notified_severity: int
    #: Cards sent so far; numbers each card's ``task_id`` (WeCom wants them unique per app).
    cards_sent: int = 0
    rules_version: str = ""
    #: The staff member's display name when the channel resolved it (会话内容存档), else "".
    staff_name: str = Field(default="", sa_column_kwargs={"server_default": ""})


class AlertMessageLink(TableModel, table=True):
    """Which archived messages joined which alert."""

    __tablename__ = "alert_message"

    alert_id: str = Field(primary_key=True, foreign_key="alert.alert_id", max_length=128)
    message_id: int = Field(primary_key=True, foreign_key="message.id", index=True)


class OutboxRecord(TableModel, table=True):
    """One call to make to WeCom: a card, an escalation, a robot post, a digest or a card update."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_at"),)

    id: int | None = Field(default=None, primary_key=True)
    alert_id: str | None = Field(default=None, index=True, max_length=128)
    kind: str
    #: JSON list of userids (empty for robot posts).
    recipients: str = Field(sa_type=Text)
    #: JSON: the card, the markdown/text, or the card update; rendered once so retries are
    #: byte-identical (WeCom's ``enable_duplicate_check`` then drops a retry after a lost answer).
    payload: str = Field(sa_type=Text)
    task_id: str | None = Field(default=None, max_length=128)
    status: str = OutboxStatus.PENDING
    attempts: int = 0
    created_at: datetime = Field(sa_type=UTCDateTime)
    next_at: datetime = Field(sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_owner: str | None = None
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=Text)
    #: Who actually got it (recipients minus rate-limited and invalid ones), JSON list.
    delivered_to: str | None = Field(default=None, sa_type=Text)
    #: From ``message/send`` for cards: updates this card later (single use, 72 h).
    response_code: str | None = Field(default=None, sa_type=Text)
    response_code_used: bool = False


class RecipientSendRecord(TableModel, table=True):
    """One message sent to one recipient: the per-recipient rate limit counts these."""

    __tablename__ = "recipient_send"
    __table_args__ = (Index("ix_recipient_send_recent", "recipient", "sent_at"),)

    id: int | None = Field(default=None, primary_key=True)
    recipient: str
    sent_at: datetime = Field(sa_type=UTCDateTime)
    outbox_id: int


class HeldAlertRecord(TableModel, table=True):
    """An alert a recipient did not get because of the rate limit; their next digest lists it."""

    __tablename__ = "held_alert"

    id: int | None = Field(default=None, primary_key=True)
    recipient: str = Field(index=True)
    alert_id: str = Field(max_length=128)
    held_at: datetime = Field(sa_type=UTCDateTime)
    digest_id: int = Field(index=True)
    """The pending digest outbox row that will list it."""
