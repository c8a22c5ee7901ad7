"""Legal holds: conversations and staff members whose messages a retention purge must keep.

A hold is set and released by an admin in the review web (``monitor.review.holds_pages``) with
a reason each time; a released hold stays as a row (who released it, when, why), so the table is
the holds' whole history. What a hold keeps: :mod:`monitor.archive.holds`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Text
from sqlmodel import Field

from monitor.tables import TableModel, UTCDateTime

__all__ = ["HoldScope", "LegalHoldRecord"]


class HoldScope:
    """What a hold names (plain constants: stored as text)."""

    CONVERSATION = "conversation"
    """``value`` is a conversation id (``kf:<open_kfid>:<external_userid>``, ``ma:...``, ...)."""
    STAFF = "staff"
    """``value`` is a staff member's WeCom userid."""
    ALL = (CONVERSATION, STAFF)


class LegalHoldRecord(TableModel, table=True):
    """One legal hold, active while ``released_at`` is None."""

    __tablename__ = "legal_hold"
    __table_args__ = (Index("ix_legal_hold_scope_value", "scope", "value"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=16)
    value: str = Field(max_length=512)
    reason: str = Field(sa_type=Text)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    released_by: str | None = Field(default=None, max_length=64)
    released_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    release_reason: str | None = Field(default=None, sa_type=Text)
