"""Archive tables (SQLModel) and the plain record the bot hands to the archive.

Alert tables live in ``monitor.alerts.models``, kf tables in ``monitor.archive.kf_models``; all of
them derive from :class:`monitor.tables.TableModel`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection, Index, Text
from sqlmodel import Field

from monitor.tables import TableModel, UTCDateTime

__all__ = [
    "DEDUPE_KEY_MAX",
    "ArchivedHit",
    "HitPart",
    "HitRecord",
    "InboundRecord",
    "MessageRecord",
    "StoreEffect",
]

DEDUPE_KEY_MAX = 128
"""Longest accepted dedupe key (a MsgId, or a 64-char SHA-256 hex digest for events)."""


class MessageRecord(TableModel, table=True):
    """One inbound message or event exactly as received, keyed by its dedupe key.

    Only ``dedupe_key`` has a length limit (checked before insert): a long user id must never make
    a message unstorable, since that would turn into endless WeCom retries.
    """

    __tablename__ = "message"

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=DEDUPE_KEY_MAX, unique=True, index=True)
    channel: str
    """Where it came from: ``app`` (self-built app callback), ``kf`` (微信客服); ``msgaudit`` (会话内容存档) is planned."""
    msg_type: str
    """WeCom MsgType (text, image, event, ...)."""
    event: str | None = None
    from_user: str = Field(index=True)
    """Who wrote it (indexed for the archive search's staff and customer filters)."""
    to_user: str
    agent_id: str | None = None
    create_time: int
    """WeCom's CreateTime (Unix seconds, as sent)."""
    content: str | None = Field(default=None, sa_type=Text)
    """The text of text messages."""
    raw: str = Field(sa_type=Text)
    """The decrypted XML/JSON as received, UTF-8 text."""
    received_at: datetime = Field(sa_type=UTCDateTime, index=True)
    rules_version: str | None = None
    """Version of the rule set that inspected it (None: not inspected, e.g. an event)."""
    conversation_id: str | None = Field(default=None, index=True)
    """The chat it belongs to: ``app:<userid>``, ``kf:<open_kfid>:<external_userid>``, ..."""
    direction: str | None = None
    """Who wrote it: ``customer``, ``staff``, ``member`` (app), ``system`` or ``bot``."""


class HitRecord(TableModel, table=True):
    """One sensitive-word hit in an archived message (the span is in the message's ``content``)."""

    __tablename__ = "hit"
    # The allow-list backtest reads one group's hits newest first (monitor.review.allow_backtest).
    __table_args__ = (Index("ix_hit_rule_group_id", "rule_group", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    word: str
    """The canonical word as written in the rule file."""
    rule_group: str
    severity: int
    """``rules.models.Severity`` value: 1 low .. 4 critical."""
    span_start: int
    span_end: int
    """``content[span_start:span_end]`` is the matched text (Python str indices)."""
    rules_version: str
    via: str | None = None
    """How the span spells the word when not as itself (``rules.models.Hit.via``): ``pinyin``,
    ``homophone``, ``initials``, ``lookalike``, ``numerals``, or ``split``."""
    parts: str | None = Field(default=None, sa_type=Text)
    """A split hit (``via = "split"``): every piece of the word, oldest message first, as JSON
    ``[{"dedupe_key": ..., "start": s, "end": e}, ...]``; the last piece is this row's own span,
    the others are spans of the sender's earlier messages (found by their dedupe key)."""


class StoreEffect(Protocol):
    """Extra writes that must commit atomically with a newly archived message."""

    @property
    def order_key(self) -> str:
        """Effects of one batch run sorted by this, so concurrent batches lock in one order."""

    def apply(self, conn: Connection, message_id: int, now: datetime) -> None:
        """Write, on the message's transaction; raising fails (and retries) the store."""


@dataclass(frozen=True, slots=True)
class HitPart:
    """One piece of a word split over messages: ``content[start:end]`` of the message whose
    dedupe key is ``dedupe_key``."""

    dedupe_key: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ArchivedHit:
    """A hit as the bot hands it to the archive, stored with its message in one transaction."""

    word: str
    group: str
    severity: int
    start: int
    end: int
    via: str | None = None
    #: A split hit's pieces, oldest first (the last one is this message's own span); else empty.
    parts: tuple[HitPart, ...] = ()

    def parts_json(self) -> str | None:
        """``parts`` as the ``hit.parts`` column stores them (None when not split)."""
        if not self.parts:
            return None
        return json.dumps(
            [{"dedupe_key": p.dedupe_key, "start": p.start, "end": p.end} for p in self.parts],
            ensure_ascii=False,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundRecord:
    """What the bot hands to :meth:`monitor.archive.store.Archive.store_inbound`: a message to store."""

    dedupe_key: str
    channel: str
    msg_type: str
    from_user: str
    to_user: str
    create_time: int
    raw: str
    event: str | None = None
    agent_id: str | None = None
    content: str | None = None
    rules_version: str | None = None
    conversation_id: str | None = None
    direction: str | None = None
    hits: tuple[ArchivedHit, ...] = ()
    #: Work done in the message's own transaction, only when this store inserted it (not for a
    #: WeCom retry of a stored message): alert intake, card clicks.
    effects: tuple[StoreEffect, ...] = ()
