"""What the review web's handlers share: the database, the writer, session and login stores.

Built once per worker by :func:`build_review_services` (``bot.web.resources`` calls it) and set on
the bot's app under ``monitor.review.keys.REVIEW_SERVICES``. The accounts, the session store and
the login throttle are derived from the other fields when the services are made: in Redis when a
client is given (keys under ``redis_prefix``), else in the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import redis.asyncio as aioredis
from argon2 import PasswordHasher
from sqlalchemy import Connection, Engine

from monitor.alerts.intake import CardStyle
from monitor.archive.writer import GroupCommitWriter
from monitor.review.accounts import Accounts
from monitor.review.sessions import DatabaseSessionStore, RedisSessionStore, Sessions
from monitor.review.settings import ReviewSettings
from monitor.review.throttle import DatabaseFailureLog, LoginThrottle, RedisFailureLog

__all__ = ["ReviewServices", "build_review_services", "read_in_thread"]

T = TypeVar("T")


async def read_in_thread(engine: Engine, work: Callable[[Connection], T]) -> T:
    """``work`` on a connection of ``engine``, in a thread: how the pages read the database
    without blocking the event loop."""

    def run() -> T:
        with engine.connect() as conn:
            return work(conn)

    return await asyncio.to_thread(run)


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
    """Now, as an aware UTC datetime (tests inject one to move past timeouts and lockouts)."""
    redis_prefix: str = "sentinel:"
    """``[storage].redis_prefix``: the review web's keys are ``<prefix>review:...``."""
    password_hasher: PasswordHasher = field(default_factory=PasswordHasher)
    """argon2id with the library's current parameters; a stored hash made with others is
    replaced at its next login."""
    accounts: Accounts = field(init=False)
    """Reviewer accounts: add, disable, list, check passwords."""
    sessions: Sessions = field(init=False)
    """Server-side sessions with the idle timeout and maximum age applied."""
    throttle: LoginThrottle = field(init=False)
    """The login lockout, per account and per client address."""

    def __post_init__(self) -> None:
        settings = self.settings
        # Frozen: the derived services are set once, here.
        set_ = object.__setattr__
        set_(self, "accounts", Accounts(self.writer, clock=self.clock, hasher=self.password_hasher))
        if self.redis is not None:
            store: RedisSessionStore | DatabaseSessionStore = RedisSessionStore(
                self.redis, prefix=self.redis_prefix
            )
            log: RedisFailureLog | DatabaseFailureLog = RedisFailureLog(
                self.redis, prefix=self.redis_prefix
            )
        else:
            store = DatabaseSessionStore(
                self.writer,
                idle_timeout_s=settings.idle_timeout_s,
                max_age_s=settings.session_max_age_s,
            )
            log = DatabaseFailureLog(self.writer)
        set_(
            self,
            "sessions",
            Sessions(
                store,
                idle_timeout_s=settings.idle_timeout_s,
                max_age_s=settings.session_max_age_s,
                clock=self.clock,
            ),
        )
        set_(
            self,
            "throttle",
            LoginThrottle(
                log,
                failures=settings.lockout_failures,
                window_s=settings.lockout_window_s,
                clock=self.clock,
            ),
        )


def build_review_services(
    settings: ReviewSettings,
    *,
    writer: GroupCommitWriter,
    card_style: CardStyle,
    wake_outbox: Callable[[], None],
    redis: aioredis.Redis | None = None,
    redis_prefix: str = "sentinel:",
    clock: Callable[[], datetime] = _utcnow,
    password_hasher: PasswordHasher | None = None,
) -> ReviewServices:
    """The review web's services over the bot's writer and (optional) Redis client."""
    return ReviewServices(
        settings=settings,
        engine=writer.engine,
        writer=writer,
        card_style=card_style,
        wake_outbox=wake_outbox,
        redis=redis,
        redis_prefix=redis_prefix,
        clock=clock,
        password_hasher=password_hasher or PasswordHasher(),
    )
