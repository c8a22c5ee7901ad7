"""Login lockout: too many failed logins for one account, or from one client address, within a
window lock further attempts out until the failures age out of the window.

Failures are counted under two keys per attempt, ``user:<name>`` and ``addr:<address>``: the
first stops guessing one account's password from many addresses, the second one address trying
many accounts. Unknown names are counted like real ones, so a lock says nothing about whether
an account exists. While locked, attempts are refused without checking the password and are not
counted (the lock lifts on schedule). A successful login clears its account's failures, not its
address's.

Failures live in Redis (a sorted set per key, scored by time) when configured, else in the
``login_failure`` table; either way every worker sees the same counts. Times come from the
injected clock, so tests can move past the window.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

import redis.asyncio as aioredis
from sqlalchemy import Connection, Table, delete, insert, select

from monitor.archive.writer import GroupCommitWriter
from monitor.review.models import LoginFailureRecord

__all__ = [
    "DatabaseFailureLog",
    "FailureLog",
    "LoginThrottle",
    "RedisFailureLog",
    "address_key",
    "user_key",
]

_FAILURE: Table = LoginFailureRecord.__table__
_KEY_LENGTH = 200  # the column's size


def user_key(username: str) -> str:
    return f"user:{username}"[:_KEY_LENGTH]


def address_key(address: str) -> str:
    return f"addr:{address}"[:_KEY_LENGTH]


class FailureLog(Protocol):
    """Failed-login times per key."""

    async def add(self, keys: Sequence[str], at: datetime, *, window: timedelta) -> None:
        """Record one failure at ``at`` under each key (and forget those older than the window)."""

    async def since(self, key: str, start: datetime) -> list[datetime]:
        """The failures under ``key`` after ``start``, oldest first."""

    async def clear(self, key: str) -> None:
        """Forget every failure under ``key``."""


class RedisFailureLog:
    """A sorted set per key, ``<prefix>review:login_fail:<key>``, members scored by time."""

    def __init__(self, redis: aioredis.Redis, *, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}review:login_fail:"

    async def add(self, keys: Sequence[str], at: datetime, *, window: timedelta) -> None:
        now = at.timestamp()
        for key in keys:
            name = self._prefix + key
            await self._redis.zadd(name, {uuid.uuid4().hex: now})
            await self._redis.zremrangebyscore(name, "-inf", now - window.total_seconds())
            # Real-time expiry only bounds memory; the window itself is judged by the scores.
            await self._redis.expire(name, int(window.total_seconds()) + 60)

    async def since(self, key: str, start: datetime) -> list[datetime]:
        pairs = await self._redis.zrangebyscore(
            self._prefix + key, f"({start.timestamp()}", "+inf", withscores=True
        )
        return [datetime.fromtimestamp(float(pair[1]), UTC) for pair in pairs]

    async def clear(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)


class DatabaseFailureLog:
    """Rows of ``login_failure`` (no Redis); writes go through the group-commit writer."""

    def __init__(self, writer: GroupCommitWriter) -> None:
        self._writer = writer

    async def add(self, keys: Sequence[str], at: datetime, *, window: timedelta) -> None:
        def work(conn: Connection) -> None:
            conn.execute(
                delete(_FAILURE).where(_FAILURE.c.key.in_(keys), _FAILURE.c.at <= at - window)
            )
            conn.execute(insert(_FAILURE), [{"key": key, "at": at} for key in keys])

        await self._writer.run(work)

    def _since(self, key: str, start: datetime) -> list[datetime]:
        query = (
            select(_FAILURE.c.at)
            .where(_FAILURE.c.key == key, _FAILURE.c.at > start)
            .order_by(_FAILURE.c.at)
        )
        with self._writer.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    async def since(self, key: str, start: datetime) -> list[datetime]:
        return await asyncio.to_thread(self._since, key, start)

    async def clear(self, key: str) -> None:
        await self._writer.run(
            lambda conn: conn.execute(delete(_FAILURE).where(_FAILURE.c.key == key))
        )


class LoginThrottle:
    """Decides whether a login attempt is locked out, and records failures."""

    def __init__(
        self,
        log: FailureLog,
        *,
        failures: int,
        window_s: int,
        clock: Callable[[], datetime],
    ) -> None:
        self.log = log
        self._failures = failures
        self._window = timedelta(seconds=window_s)
        self._clock = clock

    async def locked_for(self, username: str, address: str) -> float:
        """Seconds until an attempt for ``username`` from ``address`` is allowed; 0 = now."""
        now = self._clock()
        wait = 0.0
        for key in (user_key(username), address_key(address)):
            times = await self.log.since(key, now - self._window)
            if len(times) >= self._failures:
                # The lock lifts when all but failures-1 of them have aged out of the window.
                lifts = times[len(times) - self._failures] + self._window
                wait = max(wait, (lifts - now).total_seconds())
        return wait

    async def failed(self, username: str, address: str) -> None:
        """Count one failed attempt for the account and the address."""
        keys = [user_key(username), address_key(address)]
        await self.log.add(keys, self._clock(), window=self._window)

    async def succeeded(self, username: str) -> None:
        """A successful login clears its account's failures (not its address's)."""
        await self.log.clear(user_key(username))


def minutes(seconds: float) -> int:
    """Whole minutes to show for a wait (at least 1)."""
    return max(1, math.ceil(seconds / 60))
