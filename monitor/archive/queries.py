"""Read-only queries over the archive for operator commands."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from monitor.alerts.models import AlertMessageLink, AlertRecord, OutboxRecord
from monitor.archive.database import make_engine, normalize_url
from monitor.archive.models import HitRecord, MessageRecord

__all__ = [
    "AlertDelivery",
    "ArchivedMessageHits",
    "alert_deliveries",
    "archived_texts",
    "hits_of_message",
    "hits_query",
    "message_query",
    "recent_alerts",
]


@dataclass(frozen=True, slots=True)
class ArchivedMessageHits:
    """An archived message's text, rules version and hits (for ``simulate`` and operators)."""

    content: str | None
    rules_version: str | None
    hits: tuple[HitRecord, ...]


def message_query(dedupe_key: str) -> SelectOfScalar[MessageRecord]:
    """The archived message with this dedupe key."""
    return select(MessageRecord).where(MessageRecord.dedupe_key == dedupe_key)


def hits_query(message_id: int) -> SelectOfScalar[HitRecord]:
    """An archived message's hits, in span order."""
    return (
        select(HitRecord)
        .where(HitRecord.message_id == message_id)
        .order_by(col(HitRecord.span_start))
    )


def hits_of_message(database_url: str, dedupe_key: str) -> ArchivedMessageHits | None:
    """The archived message with ``dedupe_key`` and its hits, or None when it is not archived.

    A SQLite file that does not exist is "not archived" (it is not created as a side effect).
    """
    url = make_url(normalize_url(database_url))
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").exists():
        return None
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            message = session.exec(message_query(dedupe_key)).one_or_none()
            if message is None or message.id is None:
                return None
            hits = session.exec(hits_query(message.id)).all()
            return ArchivedMessageHits(message.content, message.rules_version, tuple(hits))
    finally:
        engine.dispose()


@dataclass(frozen=True, slots=True)
class AlertDelivery:
    """An alert a message raised or joined, and the outbox rows queued for it so far."""

    alert: AlertRecord
    outbox: tuple[OutboxRecord, ...]


def alert_deliveries(database_url: str, dedupe_key: str) -> list[AlertDelivery]:
    """The alerts linked to the archived message ``dedupe_key`` with their outbox rows."""
    url = make_url(normalize_url(database_url))
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").exists():
        return []
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            alerts = session.exec(
                select(AlertRecord)
                .join(AlertMessageLink, col(AlertMessageLink.alert_id) == col(AlertRecord.alert_id))
                .join(MessageRecord, col(MessageRecord.id) == col(AlertMessageLink.message_id))
                .where(MessageRecord.dedupe_key == dedupe_key)
            ).all()
            return [
                AlertDelivery(
                    alert,
                    tuple(
                        session.exec(
                            select(OutboxRecord)
                            .where(OutboxRecord.alert_id == alert.alert_id)
                            .order_by(col(OutboxRecord.id))
                        ).all()
                    ),
                )
                for alert in alerts
            ]
    finally:
        engine.dispose()


def recent_alerts(engine: Engine, limit: int = 20) -> list[AlertRecord]:
    """The most recently active alerts, newest first (their state: open, claimed, resolved...)."""
    with Session(engine) as session:
        return list(
            session.exec(
                select(AlertRecord).order_by(col(AlertRecord.last_at).desc()).limit(limit)
            ).all()
        )


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
