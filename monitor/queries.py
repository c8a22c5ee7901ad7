"""Read-only queries over the archive for operator commands."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

from sqlmodel import Session, col, select

from monitor.db import make_engine
from monitor.models import MessageRecord

__all__ = ["archived_texts"]


def archived_texts(database_url: str, since: date | None = None) -> Iterator[str]:
    """Texts of the archived text messages (oldest first), received on or after ``since`` (UTC).

    Streams in pages of 1,000 rows, so a large archive is never loaded at once.
    """
    engine = make_engine(database_url)
    query = select(MessageRecord.content).where(col(MessageRecord.content).is_not(None))
    if since is not None:
        start = datetime(since.year, since.month, since.day, tzinfo=UTC)
        query = query.where(MessageRecord.received_at >= start)
    query = query.order_by(col(MessageRecord.id)).execution_options(yield_per=1000)
    try:
        with Session(engine) as session:
            for content in session.exec(query):
                if content:
                    yield content
    finally:
        engine.dispose()
