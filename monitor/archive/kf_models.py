"""微信客服 (kf) tables: the pull cursor, per-customer reply state, the bot's outbound actions,
one decision per customer message, and flags on archived messages (recalled, send failed).

The bot's kf puller (``bot.kf``) writes them on the group-commit writer. Everything another worker
needs lives here, never in process memory: the cursor with its fencing token, the messages sent
in the current 48 h window (WeCom allows 5 after each customer message), what was decided for
each customer message (so a re-read after a crash never answers twice), and the outbound actions
themselves, written ``pending`` before the API call and re-sent with the same ``msgid`` (WeCom's
idempotency key) after a crash.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, col, select
from sqlmodel.sql.expression import SelectOfScalar

from monitor.tables import TableModel, UTCDateTime

__all__ = [
    "ActionKind",
    "ActionStatus",
    "KfActionRecord",
    "KfCursorRecord",
    "KfCustomerRecord",
    "KfDecisionRecord",
    "MessageFlag",
    "MessageFlagRecord",
    "flags_query",
]


class ActionKind:
    """What a ``kf_reply`` row does (plain constants: stored as text)."""

    REPLY = "reply"
    """A reply rule's answer (text, menu or link) through kf/send_msg."""
    HANDOFF = "handoff"
    """The short message telling the customer a human takes over (kf/send_msg)."""
    TRANSFER = "transfer"
    """kf/service_state/trans to the pool (2) or a servicer (3); sends nothing to the customer."""
    WELCOME = "welcome"
    """The welcome on enter_session through kf/send_msg_on_event (outside the 5-message budget)."""

    #: Kinds that are messages through kf/send_msg, counted against WeCom's 5-per-48 h budget.
    BUDGETED = (REPLY, HANDOFF)


class ActionStatus:
    """Life of a ``kf_reply`` row."""

    PENDING = "pending"
    """Decided and committed; not yet confirmed by WeCom (re-sent with the same msgid)."""
    SENT = "sent"
    FAILED = "failed"
    """WeCom refused it (errcode in ``error``) or it expired; it was not delivered."""
    SEND_FAILED_EVENT = "send_failed_event"
    """Accepted, then reported undeliverable by a ``msg_send_fail`` event (``fail_type``)."""


class KfCursorRecord(TableModel, table=True):
    """The sync_msg cursor of one kf account and the fencing token of its latest puller.

    A puller claims ``fence + 1`` when it takes the lock; its cursor writes require the stored
    fence to still be its own, so a puller whose lock lapsed can never move the cursor.
    """

    __tablename__ = "kf_cursor"

    open_kfid: str = Field(primary_key=True, max_length=128)
    cursor: str = ""
    fence: int = 0
    updated_at: datetime = Field(sa_type=UTCDateTime)


class KfCustomerRecord(TableModel, table=True):
    """What reply decisions need to know about one customer of one kf account."""

    __tablename__ = "kf_customer"

    open_kfid: str = Field(primary_key=True, max_length=128)
    external_userid: str = Field(primary_key=True, max_length=128)
    #: send_time of the newest customer message: it opened the current 48 h window.
    last_customer_at: int = 0
    #: Customer messages in a row the bot did not answer (reset by a reply or a hand-off).
    unanswered: int = 0
    updated_at: datetime = Field(sa_type=UTCDateTime)


class KfActionRecord(TableModel, table=True):
    """One outbound action the bot decided: a message to a customer, or a session transfer.

    ``msgid`` is derived from the message it answers, so the same decision always has the same
    id: WeCom dedupes ``send_msg`` by it, and this table by its unique key.
    """

    __tablename__ = "kf_reply"
    __table_args__ = (Index("ix_kf_reply_customer", "open_kfid", "external_userid", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    msgid: str = Field(max_length=32, unique=True)
    open_kfid: str = Field(max_length=128)
    external_userid: str = Field(max_length=128)
    #: WeCom msgid of the customer message (or enter_session event) this answers.
    in_reply_to: str = Field(sa_type=Text)
    kind: str
    #: The reply rule that chose it ("" for configured texts), for per-customer cooldowns.
    rule: str = ""
    #: kf msgtype sent (text, msgmenu, link); "" for a transfer.
    msgtype: str = ""
    #: JSON: the msgtype body sent, or ``{"service_state": n, "servicer_userid": ...}``.
    body: str = Field(sa_type=Text)
    #: ``last_customer_at`` of the customer when decided: the budget window it counts in.
    window_start: int = 0
    status: str = Field(index=True)
    error: str = ""
    #: msg_send_fail's fail_type when WeCom reported the message undeliverable.
    fail_type: int | None = None
    attempts: int = 0
    created_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class KfDecisionRecord(TableModel, table=True):
    """What the bot decided for one customer message; its presence means "decided, never again"."""

    __tablename__ = "kf_decision"

    #: The customer message's archive key (``kf:<msgid>``).
    dedupe_key: str = Field(primary_key=True, max_length=128)
    open_kfid: str = Field(max_length=128)
    external_userid: str = Field(max_length=128)
    #: replied, handoff, unanswered, cooldown, with_human, too_old, window_closed.
    outcome: str
    decided_at: datetime = Field(sa_type=UTCDateTime)


class MessageFlag:
    """Flags on archived messages (plain constants)."""

    RECALLED = "recalled"
    """The customer or servicer recalled it; the original stays archived (compliance)."""
    SEND_FAILED = "send_failed"
    """A bot message WeCom reported undeliverable (``detail``: the fail_type)."""


class MessageFlagRecord(TableModel, table=True):
    """A flag on an archived message, set by a later event; the review UI shows them."""

    __tablename__ = "message_flag"
    __table_args__ = (UniqueConstraint("dedupe_key", "flag", name="uq_message_flag"),)

    id: int | None = Field(default=None, primary_key=True)
    #: Archive key of the flagged message (it may arrive after the flag: keys, not row ids).
    dedupe_key: str = Field(max_length=128, index=True)
    flag: str
    detail: str = ""
    #: Archive key of the event that set the flag.
    source_key: str = Field(default="", max_length=128)
    created_at: datetime = Field(sa_type=UTCDateTime)


def flags_query(dedupe_keys: list[str]) -> SelectOfScalar[MessageFlagRecord]:
    """The flags of the archived messages with these keys (for a conversation page)."""
    return (
        select(MessageFlagRecord)
        .where(col(MessageFlagRecord.dedupe_key).in_(dedupe_keys))
        .order_by(col(MessageFlagRecord.id))
    )
