"""Keys the review web generates once and keeps in the database, so every worker uses the same.

``pseudonym_key`` (when ``[review] pseudonym_key`` is not configured; ``monitor.review.pseudonyms``)
and ``sample_key`` (the order of the weekly draw; ``monitor.review.sampling``). Values are never
logged.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table, Text
from sqlmodel import Field

from monitor.tables import TableModel, UTCDateTime

__all__ = ["PSEUDONYM_KEY", "SAMPLE_KEY", "SECRETS", "ReviewSecretRecord"]

PSEUDONYM_KEY = "pseudonym_key"
SAMPLE_KEY = "sample_key"


class ReviewSecretRecord(TableModel, table=True):
    """A key the review web generated once; every worker reads the same one."""

    __tablename__ = "review_secret"

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_type=Text)
    """URL-safe base64 of 32 random bytes."""
    created_at: datetime = Field(sa_type=UTCDateTime)


SECRETS: Table = ReviewSecretRecord.__table__
