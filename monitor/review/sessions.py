"""Server-side review sessions, shared by every worker: in Redis when configured, else in the
database table ``review_session``.

The browser's cookie holds a random token; the stores keep only its SHA-256, so a leaked
database or Redis dump opens no session. :class:`Sessions` applies the idle timeout and the
maximum age (by the injected clock) over either :class:`SessionStore`. A session's last use is
written at most once a minute (:data:`TOUCH_AFTER_S`): the idle timeout is exact to that minute,
and reading pages does not cost a database commit per request.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import redis.asyncio as aioredis
from sqlalchemy import Connection, Table, delete, insert, or_, select, update

from monitor.archive.writer import GroupCommitWriter
from monitor.review.models import ReviewSessionRecord

__all__ = [
    "TOUCH_AFTER_S",
    "DatabaseSessionStore",
    "RedisSessionStore",
    "Session",
    "SessionStore",
    "Sessions",
    "token_hash",
]

TOUCH_AFTER_S = 60
_SESSION: Table = ReviewSessionRecord.__table__


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def token_hash(token: str) -> str:
    """What the stores keep of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    """One logged-in browser, as stored."""

    username: str
    csrf_token: str
    address: str
    created_at: datetime
    last_seen_at: datetime


class SessionStore(Protocol):
    """Where sessions live, keyed by the token's hash."""

    async def save(self, key: str, session: Session, *, expire_s: int) -> None:
        """Store a new session; ``expire_s`` bounds how long the store may keep it."""

    async def load(self, key: str) -> Session | None:
        """The session stored under ``key``, or None."""

    async def touch(self, key: str, at: datetime) -> None:
        """Record that the session was used at ``at``."""

    async def drop(self, key: str) -> None:
        """Forget the session (logout, timeout)."""


class RedisSessionStore:
    """One Redis hash per session, ``<prefix>review:session:<hash>``, with a TTL of the max age."""

    def __init__(self, redis: aioredis.Redis, *, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}review:session:"

    async def save(self, key: str, session: Session, *, expire_s: int) -> None:
        name = self._prefix + key
        await self._redis.hset(
            name,
            mapping={
                "username": session.username,
                "csrf_token": session.csrf_token,
                "address": session.address,
                "created_at": session.created_at.timestamp(),
                "last_seen_at": session.last_seen_at.timestamp(),
            },
        )
        await self._redis.expire(name, expire_s)

    async def load(self, key: str) -> Session | None:
        raw = await self._redis.hgetall(self._prefix + key)
        if not raw:
            return None
        fields = {_text(k): _text(v) for k, v in raw.items()}
        return Session(
            username=fields["username"],
            csrf_token=fields["csrf_token"],
            address=fields.get("address", ""),
            created_at=datetime.fromtimestamp(float(fields["created_at"]), UTC),
            last_seen_at=datetime.fromtimestamp(float(fields["last_seen_at"]), UTC),
        )

    async def touch(self, key: str, at: datetime) -> None:
        # HSET on a key that expired meanwhile would make a stub without a user: only if present.
        if await self._redis.exists(self._prefix + key):
            await self._redis.hset(self._prefix + key, "last_seen_at", at.timestamp())

    async def drop(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)


class DatabaseSessionStore:
    """Rows of ``review_session`` (no Redis): writes go through the group-commit writer."""

    def __init__(self, writer: GroupCommitWriter, *, idle_timeout_s: int, max_age_s: int) -> None:
        self._writer = writer
        self._idle = timedelta(seconds=idle_timeout_s)
        self._max_age = timedelta(seconds=max_age_s)

    async def save(self, key: str, session: Session, *, expire_s: int) -> None:
        now = session.created_at

        def work(conn: Connection) -> None:
            # Sweep the sessions that are over, so the table does not grow with every login.
            conn.execute(
                delete(_SESSION).where(
                    or_(
                        _SESSION.c.last_seen_at < now - self._idle,
                        _SESSION.c.created_at < now - self._max_age,
                    )
                )
            )
            conn.execute(
                insert(_SESSION).values(
                    token_hash=key,
                    username=session.username,
                    csrf_token=session.csrf_token,
                    address=session.address,
                    created_at=session.created_at,
                    last_seen_at=session.last_seen_at,
                )
            )

        await self._writer.run(work)

    def _load(self, key: str) -> Session | None:
        with self._writer.engine.connect() as conn:
            row = conn.execute(select(_SESSION).where(_SESSION.c.token_hash == key)).first()
        if row is None:
            return None
        return Session(
            username=row.username,
            csrf_token=row.csrf_token,
            address=row.address,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
        )

    async def load(self, key: str) -> Session | None:
        return await asyncio.to_thread(self._load, key)

    async def touch(self, key: str, at: datetime) -> None:
        await self._writer.run(
            lambda conn: conn.execute(
                update(_SESSION).where(_SESSION.c.token_hash == key).values(last_seen_at=at)
            )
        )

    async def drop(self, key: str) -> None:
        await self._writer.run(
            lambda conn: conn.execute(delete(_SESSION).where(_SESSION.c.token_hash == key))
        )


class Sessions:
    """Start, resume and end sessions with the idle timeout and maximum age applied."""

    def __init__(
        self,
        store: SessionStore,
        *,
        idle_timeout_s: int,
        max_age_s: int,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self._idle = timedelta(seconds=idle_timeout_s)
        self._max_age = timedelta(seconds=max_age_s)
        self._max_age_s = max_age_s
        self._clock = clock

    async def start(self, username: str, address: str) -> tuple[str, Session]:
        """A new session for ``username``: the cookie's token, and the session (its CSRF token)."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        session = Session(
            username=username,
            csrf_token=secrets.token_urlsafe(32),
            address=address,
            created_at=now,
            last_seen_at=now,
        )
        await self.store.save(token_hash(token), session, expire_s=self._max_age_s)
        return token, session

    async def resume(self, token: str) -> Session | None:
        """The live session of ``token`` (its use recorded), or None if unknown or over."""
        key = token_hash(token)
        session = await self.store.load(key)
        if session is None:
            return None
        now = self._clock()
        if now - session.last_seen_at > self._idle or now - session.created_at > self._max_age:
            await self.store.drop(key)
            return None
        if (now - session.last_seen_at).total_seconds() >= TOUCH_AFTER_S:
            await self.store.touch(key, now)
        return session

    async def end(self, token: str) -> None:
        """End the session of ``token`` (logout, or its account was disabled)."""
        await self.store.drop(token_hash(token))
