"""What the review web's handlers share: the database, the writer, session and login stores.

Built once per worker by :func:`build_review_services` (``bot.web.resources`` calls it) and set on
the bot's app under ``monitor.review.keys.REVIEW_SERVICES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as aioredis
from sqlalchemy import Engine

from monitor.alerts.intake import CardStyle
from monitor.archive.writer import GroupCommitWriter
from monitor.review.settings import ReviewSettings

__all__ = ["ReviewServices", "build_review_services"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ReviewServices:
    """Shared by every review handler of one worker."""

    settings: ReviewSettings
    engine: Engine
    """For reads (queue, conversation pages, audit log); writes go through ``writer``."""
    writer: GroupCommitWriter
    """Every write (actions, notes, audit rows) commits through the group-commit writer."""
    card_style: CardStyle
    """How alert cards look and link (an escalation from the web sends one)."""
    wake_outbox: Callable[[], None]
    """Tell the outbox worker that rows are due (card updates after an action)."""
    redis: aioredis.Redis | None = None
    """Sessions and login throttling live here when set, else in the database."""
    clock: Callable[[], datetime] = _utcnow


def build_review_services(
    settings: ReviewSettings,
    *,
    writer: GroupCommitWriter,
    card_style: CardStyle,
    wake_outbox: Callable[[], None],
    redis: aioredis.Redis | None = None,
    clock: Callable[[], datetime] = _utcnow,
) -> ReviewServices:
    """The review web's services over the bot's writer and (optional) Redis client."""
    return ReviewServices(
        settings=settings,
        engine=writer.engine,
        writer=writer,
        card_style=card_style,
        wake_outbox=wake_outbox,
        redis=redis,
        clock=clock,
    )
