"""The app's one Redis client, shared by everything that keeps state across workers: WeCom-retry
dedupe, the access-token cache, the kf pull locks and the reply cooldowns.

An empty ``[storage] redis_url`` means no client: each of those falls back to its in-process
version (and only one worker may run).
"""

from __future__ import annotations

import redis.asyncio as aioredis

from bot.config import StorageConfig

__all__ = ["MAX_CONNECTIONS", "create_redis"]

#: Connections the client opens at most; a caller finding them all busy waits (see below).
MAX_CONNECTIONS = 100
#: How long a caller waits for a free connection before its command fails.
CONNECTION_WAIT_S = 5


def create_redis(settings: StorageConfig) -> aioredis.Redis | None:
    """A client for ``settings.redis_url`` (None when it is empty); it owns its pool.

    The pool is a blocking one: a burst of callbacks waits for a connection rather than failing
    its dedupe lookup ("Too many connections") and falling back to the archive key. Nothing is
    connected until the first command; ``await client.aclose()`` closes the pool.
    """
    if not settings.redis_url:
        return None
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=MAX_CONNECTIONS, timeout=CONNECTION_WAIT_S
    )
    return aioredis.Redis.from_pool(pool)
