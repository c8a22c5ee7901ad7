"""Archive tables (SQLModel) and the plain record the bot hands to the archive.

Kept minimal on purpose: hits, alerts and the hash chain are added by later issues.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import DateTime, Dialect, Text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

__all__ = ["DEDUPE_KEY_MAX", "InboundRecord", "MessageRecord", "UTCDateTime"]

DEDUPE_KEY_MAX = 128
"""Longest accepted dedupe key (a MsgId, or a 64-char SHA-256 hex digest for events)."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite has no timezone type and hands back naive values; PostgreSQL's ``timestamptz`` answers
    in the session's time zone. Both are normalised so callers always get an aware UTC datetime.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        value = value.astimezone(UTC)
        # SQLite would store the offset as text and then fail to compare it; store naive UTC there.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class MessageRecord(SQLModel, table=True):
    """One inbound message or event exactly as received, keyed by its dedupe key.

    Only ``dedupe_key`` has a length limit (checked before insert): a long user id must never make
    a message unstorable, since that would turn into endless WeCom retries.
    """

    __tablename__ = "message"

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=DEDUPE_KEY_MAX, unique=True, index=True)
    channel: str
    """Where it came from: ``app`` (self-built app callback); later ``kf`` and ``msgaudit``."""
    msg_type: str
    """WeCom MsgType (text, image, event, ...)."""
    event: str | None = None
    from_user: str
    to_user: str
    agent_id: str | None = None
    create_time: int
    """WeCom's CreateTime (Unix seconds, as sent)."""
    content: str | None = Field(default=None, sa_type=Text)
    """The text of text messages."""
    raw: str = Field(sa_type=Text)
    """The decrypted XML/JSON as received, UTF-8 text."""
    received_at: datetime = Field(sa_type=UTCDateTime)


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundRecord:
    """What the bot hands to :meth:`monitor.archive.Archive.store_inbound`: a message to store."""

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
