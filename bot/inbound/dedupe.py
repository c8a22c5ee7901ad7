"""Drop WeCom's retries of a callback it already delivered.

WeCom retries a callback that got no 2xx within 5 s, three times. The pipeline asks ``seen(key)``
before processing and calls ``remember(key)`` only after the message was stored, so a failed store
lets the retry through (the no-data-loss rule). The archive's unique ``dedupe_key`` is the backstop
if two copies race past ``seen``, or while Redis is away; this store only saves the work.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.log import pipeline_log

__all__ = ["DedupeStore", "MemoryDedupe", "RedisDedupe"]


@runtime_checkable
class DedupeStore(Protocol):
    """Remembers delivered dedupe keys (MsgId, or a hash of an event's XML) for a while."""

    async def seen(self, key: str) -> bool:
        """True if ``key`` was remembered and has not expired."""
        ...

    async def remember(self, key: str) -> bool:
        """Remember ``key`` (SET NX semantics): True if it was not remembered yet."""
        ...

    async def ping(self) -> None:
        """Raise if the store does not answer."""
        ...

    async def close(self) -> None:
        """Release what the store owns."""
        ...


class MemoryDedupe:
    """In-process fallback: at most ``max_entries`` keys, each kept ``ttl_s`` seconds.

    Only for a single worker (another process would not see these keys). When full, the oldest
    remembered key is evicted first. ``seen`` deliberately does not refresh a key: the retry
    window counts from the first delivery, and insertion order makes expiry a pop from the front.
    """

    def __init__(
        self,
        *,
        max_entries: int = 100_000,
        ttl_s: float = 600,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self._max_entries = max_entries
        self._ttl_s = ttl_s
        self._clock = clock
        self._expiry: OrderedDict[str, float] = OrderedDict()  # key -> deadline, oldest first

    def __len__(self) -> int:
        return len(self._expiry)

    async def seen(self, key: str) -> bool:
        """True if ``key`` was remembered less than ``ttl_s`` ago (and not evicted)."""
        self._expire()
        return key in self._expiry

    async def remember(self, key: str) -> bool:
        """Remember ``key`` unless it is already remembered; True if newly remembered."""
        self._expire()
        if key in self._expiry:
            return False
        self._expiry[key] = self._clock() + self._ttl_s
        while len(self._expiry) > self._max_entries:
            self._expiry.popitem(last=False)
        return True

    async def ping(self) -> None:
        """Always answers: it is in-process."""

    async def close(self) -> None:
        """Forget every key."""
        self._expiry.clear()

    def _expire(self) -> None:
        # Deadlines grow with insertion order (one TTL for all), so expired keys are at the front.
        now = self._clock()
        while self._expiry:
            key, deadline = next(iter(self._expiry.items()))
            if deadline > now:
                break
            del self._expiry[key]


class RedisDedupe:
    """Shared store for several workers: ``SET prefix+key 1 NX EX ttl_s`` and ``EXISTS``.

    The Redis client is the caller's (the app creates and closes it); :meth:`close` leaves it open.
    While Redis does not answer (``redis.RedisError``; the app's client gives up within its
    deadline, see ``bot.redis_guard``), ``seen`` says False and ``remember`` remembers nothing:
    the message is processed, and the archive ignores a dedupe key it already stored. The outage
    is logged once by the client's guard, so these log only at DEBUG (never per message above it).
    """

    def __init__(
        self, redis: aioredis.Redis, *, ttl_s: int = 600, prefix: str = "sentinel:dedupe:"
    ) -> None:
        if ttl_s < 1:
            raise ValueError("ttl_s must be at least 1 second")
        self._redis = redis
        self._ttl_s = ttl_s
        self._prefix = prefix

    async def seen(self, key: str) -> bool:
        """True if ``key`` is remembered in Redis; False when Redis does not answer."""
        try:
            return bool(await self._redis.exists(self._prefix + key))
        except RedisError as exc:
            pipeline_log.debug("dedupe lookup skipped (%s); the archive key decides", exc)
            return False

    async def remember(self, key: str) -> bool:
        """Remember ``key`` for ``ttl_s`` seconds unless present; True if newly remembered.

        False when Redis does not answer (nothing was remembered; the archive key still holds).
        """
        try:
            return bool(await self._redis.set(self._prefix + key, b"1", nx=True, ex=self._ttl_s))
        except RedisError as exc:
            pipeline_log.debug("dedupe key not remembered (%s); the archive key holds", exc)
            return False

    async def ping(self) -> None:
        """Raise ``redis.RedisError`` unless Redis answers."""
        await self._redis.ping()

    async def close(self) -> None:
        """Nothing to release: the Redis client belongs to the caller."""
