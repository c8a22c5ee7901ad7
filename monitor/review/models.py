"""Review-web tables: reviewer accounts, server-side sessions, failed logins, case notes.

Sessions and failed-login counts live here when there is no Redis (``[storage].redis_url``
empty); with Redis they live there, shared by every worker, and these tables stay empty.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Text
from sqlmodel import Field

from monitor.tables import TableModel, UTCDateTime

__all__ = [
    "CaseNoteRecord",
    "LoginFailureRecord",
    "ReviewSessionRecord",
    "ReviewerRecord",
    "Role",
]


class Role:
    """Reviewer roles (plain constants: stored as text)."""

    REVIEWER = "reviewer"
    """Works the queue: views, claims, resolves, dismisses, escalates, writes notes."""
    ADMIN = "admin"
    """A reviewer who also manages accounts and reads the audit log."""

    ALL = (REVIEWER, ADMIN)


class ReviewerRecord(TableModel, table=True):
    """A review-web account (``run_bot.py users add``); never deleted, only disabled."""

    __tablename__ = "reviewer"

    username: str = Field(primary_key=True, max_length=64)
    role: str
    password_hash: str
    """argon2id, in the PHC string format (``$argon2id$v=19$m=...``)."""
    disabled: bool = False
    created_at: datetime = Field(sa_type=UTCDateTime)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ReviewSessionRecord(TableModel, table=True):
    """A logged-in browser; the cookie holds the token, this table only its SHA-256."""

    __tablename__ = "review_session"

    token_hash: str = Field(primary_key=True, max_length=64)
    username: str = Field(max_length=64, index=True)
    csrf_token: str
    address: str = ""
    created_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime, index=True)


class LoginFailureRecord(TableModel, table=True):
    """One failed login, counted per account and per client address for the lockout."""

    __tablename__ = "login_failure"
    __table_args__ = (Index("ix_login_failure_key_at", "key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200)
    """``user:<username>`` or ``addr:<address>``."""
    at: datetime = Field(sa_type=UTCDateTime)


class CaseNoteRecord(TableModel, table=True):
    """A reviewer's note on a case (an alert), shown on the conversation page."""

    __tablename__ = "case_note"

    id: int | None = Field(default=None, primary_key=True)
    alert_id: str = Field(max_length=128, index=True)
    author: str = Field(max_length=64)
    at: datetime = Field(sa_type=UTCDateTime)
    body: str = Field(sa_type=Text)
