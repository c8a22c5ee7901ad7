"""The app's one Redis client, shared by everything that keeps state across workers: WeCom-retry
dedupe, the access-token cache, the kf pull locks and the reply cooldowns.

Every command of the client runs through one :class:`bot.redis_guard.RedisGuard`: a deadline of
``[storage] redis_timeout_ms`` (waiting for a pooled connection included) and a circuit breaker.
The users keep a plain ``redis.asyncio.Redis`` interface and each falls back on its own when a
command raises :class:`bot.redis_guard.RedisUnavailable`.

An empty ``[storage] redis_url`` means no client: each of those falls back to its in-process
version (and only one worker may run).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.config import StorageConfig
from bot.redis_guard import RedisGuard

__all__ = ["MAX_CONNECTIONS", "GuardedRedis", "create_redis"]

#: Connections the client opens at most; a caller finding them all busy waits, within its deadline.
MAX_CONNECTIONS = 100


class GuardedRedis(aioredis.Redis):
    """A Redis client whose every command runs under ``guard`` (deadline + circuit breaker).

    Commands, Lua scripts and ``scan_iter`` all pass through :meth:`execute_command`; the app
    uses no pipelines or pub/sub (those would bypass the guard).
    """

    def __init__(self, *, guard: RedisGuard | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.guard = guard if guard is not None else RedisGuard()

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        """Run the command under the guard; :class:`RedisUnavailable` on an outage."""
        command: Callable[..., Awaitable[Any]] = super().execute_command
        return await self.guard.run(lambda: command(*args, **options))


def create_redis(
    settings: StorageConfig, *, max_connections: int = MAX_CONNECTIONS
) -> GuardedRedis | None:
    """A guarded client for ``settings.redis_url`` (None when it is empty); it owns its pool.

    The pool is a blocking one: a burst of callbacks waits for a connection rather than failing
    its dedupe lookup ("Too many connections"), but never past the call's deadline. Sockets
    time out at the same deadline, and a command is retried once at once on a fresh
    connection (a pooled one may be stale after a Redis restart). Nothing is connected until
    the first command; ``await client.aclose()`` closes the pool.
    """
    if not settings.redis_url:
        return None
    timeout_s = settings.redis_timeout_ms / 1000
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=max_connections,
        timeout=timeout_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )
    client = GuardedRedis(connection_pool=pool, guard=RedisGuard(timeout_s=timeout_s))
    client.auto_close_connection_pool = True  # the client owns its pool (as ``Redis.from_pool``)
    return client
