"""Access-token caches and the single-flight refresher.

Refresh is single-flight twice over: an ``asyncio.Lock`` in the process, and the cache's own lock
across workers (Redis: ``SET NX PX`` with a random owner token, released by compare-and-delete),
with a re-check of the cache after each lock so N workers starting together fetch once.
https://developer.work.weixin.qq.com/document/path/91039 (gettoken).

While Redis does not answer (any ``redis.RedisError``; the caller's client is expected to give up
quickly), :class:`RedisTokenCache` serves from an in-process copy and its lock is a no-op: the
refresh stays single-flight within the process (the ``asyncio.Lock``), and each worker fetches
at most once on its own. WeCom hands out the same valid token to every fetch, so nothing breaks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .models import log

__all__ = ["MemoryTokenCache", "RedisTokenCache", "TokenCache", "TokenManager", "token_key"]

# Compare-and-delete: only the value we hold is removed (a failed token, or our own lock).
_CAD = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


def token_key(corp_id: str, secret: str) -> str:
    """Cache key per (corp_id, secret); the secret only enters as a truncated hash."""
    digest = hashlib.sha256(f"{corp_id}:{secret}".encode()).hexdigest()[:16]
    return f"token:{corp_id}:{digest}"


class TokenCache(Protocol):
    """Where access tokens live; ``lock`` serialises refreshes among the cache's users."""

    async def get(self, key: str) -> str | None:
        """The cached token, or None when absent or expired."""

    async def set(self, key: str, token: str, ttl_s: float) -> None:
        """Store ``token`` for ``ttl_s`` seconds."""

    async def delete_if(self, key: str, token: str) -> bool:
        """Drop the cached token only if it is ``token``; True when dropped."""

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        """Hold the refresh lock for ``key``."""


class MemoryTokenCache:
    """In-process cache; its lock is a no-op (the TokenManager's asyncio.Lock suffices)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._items: dict[str, tuple[str, float]] = {}

    async def get(self, key: str) -> str | None:
        item = self._items.get(key)
        if item is None or item[1] <= self._clock():
            return None
        return item[0]

    async def set(self, key: str, token: str, ttl_s: float) -> None:
        self._items[key] = (token, self._clock() + ttl_s)

    async def delete_if(self, key: str, token: str) -> bool:
        item = self._items.get(key)
        if item is None or item[0] != token:
            return False
        del self._items[key]
        return True

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()


class RedisTokenCache:
    """Cache shared by all workers through Redis; keys live under ``prefix``.

    Every token it sets is also kept in process, for the times Redis does not answer (see the
    module docstring); those failures are logged at DEBUG only (the client's owner reports the
    outage).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        prefix: str = "sentinel:wecom:",
        *,
        lock_ttl_s: float = 15.0,
        poll_s: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._lock_ttl_ms = int(lock_ttl_s * 1000)
        self._poll_s = poll_s
        self._local = MemoryTokenCache(clock=clock)

    async def get(self, key: str) -> str | None:
        try:
            value = await self._redis.get(self._prefix + key)
        except RedisError as exc:
            log.debug("token cache: Redis unavailable (%s); using this process's copy", exc)
            return await self._local.get(key)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def set(self, key: str, token: str, ttl_s: float) -> None:
        await self._local.set(key, token, ttl_s)
        try:
            await self._redis.set(self._prefix + key, token, px=max(int(ttl_s * 1000), 1))
        except RedisError as exc:
            log.debug("token cache: Redis unavailable (%s); token kept in this process", exc)

    async def delete_if(self, key: str, token: str) -> bool:
        dropped = await self._local.delete_if(key, token)
        try:
            return await self._cad(self._prefix + key, token)
        except RedisError as exc:
            log.debug("token cache: Redis unavailable (%s); dropped in this process", exc)
            return dropped

    async def try_lock(self, key: str) -> str | None:
        """Take the refresh lock; returns the owner token, or None when someone holds it."""
        owner = secrets.token_hex(16)
        name = f"{self._prefix}{key}:lock"
        if await self._redis.set(name, owner, nx=True, px=self._lock_ttl_ms):
            return owner
        return None

    async def unlock(self, key: str, owner: str) -> bool:
        """Release the lock only if ``owner`` still holds it (it may have expired and moved on)."""
        return await self._cad(f"{self._prefix}{key}:lock", owner)

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        # A holder that dies leaves the lock to expire after lock_ttl_s; waiters poll meanwhile.
        # Without Redis the process's own single flight (TokenManager's asyncio.Lock) is all.
        owner: str | None = None
        try:
            while (owner := await self.try_lock(key)) is None:
                await asyncio.sleep(self._poll_s)
        except RedisError as exc:
            log.debug("token cache: Redis unavailable (%s); refreshing without its lock", exc)
        try:
            yield
        finally:
            if owner is not None:
                try:
                    await self.unlock(key, owner)
                except RedisError as exc:  # it expires after lock_ttl_s
                    log.debug("token cache: lock not released (%s); it expires on its own", exc)

    async def _cad(self, name: str, value: str) -> bool:
        result: object = await self._redis.eval(_CAD, 1, name, value)
        return bool(result)


class TokenManager:
    """Single-flight access-token getter over a :class:`TokenCache`.

    ``fetch`` calls ``gettoken`` directly (never through the API retry path) and returns
    ``(token, expires_in)``; tokens are cached for ``expires_in - early_s`` seconds.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[tuple[str, int]]],
        cache: TokenCache,
        key: str,
        *,
        early_s: int = 300,
    ) -> None:
        self._fetch = fetch
        self._cache = cache
        self._key = key
        self._early_s = early_s
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        """A valid token from the cache, fetching it at most once across tasks and workers."""
        if (token := await self._cache.get(self._key)) is not None:
            return token
        async with self._lock:
            if (token := await self._cache.get(self._key)) is not None:
                return token
            async with self._cache.lock(self._key):
                # Another worker may have refreshed while we waited for its lock.
                if (token := await self._cache.get(self._key)) is not None:
                    return token
                token, expires_in = await self._fetch()
                ttl = (
                    expires_in - self._early_s if expires_in > 2 * self._early_s else expires_in / 2
                )
                await self._cache.set(self._key, token, max(ttl, 1))
                log.info("fetched a new access_token (cached %ds)", int(ttl))
                return token

    async def invalidate(self, token: str) -> bool:
        """Drop ``token`` if it is still the cached one; a newer token stays."""
        return await self._cache.delete_if(self._key, token)
