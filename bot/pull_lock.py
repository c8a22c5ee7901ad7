"""Who may pull a stream right now: one puller per stream across every worker.

A stream is a kf account (``namespace="kf"``, one per open_kfid) or the conversation archive
(``namespace="msgaudit"``, one stream).

:class:`RedisPullLocks` (several workers): ``SET key owner NX PX lease`` takes the lock, a Lua
compare-and-delete releases it only if it is still ours, a Lua compare-and-pexpire renews it while
a pull runs. :class:`MemoryPullLocks` is the one-process fallback (no Redis: one worker only).

Besides the lock, both keep what the pull needs from other workers' callbacks:

- an "again" flag: a worker whose event finds the lock taken sets it; the holder checks it after
  releasing and pulls once more, so an event is never lost and never starts a second puller. A
  holder killed mid-pull never sees the flag: the worker that set it checks back once the dead
  holder's lease has run out (``lease_left``) and pulls itself if the flag is still there;
- the newest pull token per stream (a callback's token is valid 10 min; ``sync_msg`` without
  one is strictly rate-limited), so the holder can use a token another worker received.

A lock only guarantees "usually one"; a puller whose lease lapsed (a long GC pause, a partition)
is stopped by the fencing token in its cursor row (``kf_cursor``, ``msgaudit_cursor``), not by
this module.

While Redis does not answer (``redis.RedisError``; the app's client gives up within its deadline
and then skips Redis for a while, see ``bot.redis_guard``), :class:`RedisPullLocks` keeps pulling
with its in-process fallback (a :class:`MemoryPullLocks`) rather than stopping kf for the outage:
one puller per stream in each worker, so two workers may pull one stream at once. That is
safe, only wasteful: each pull claims a new fencing token, so the older puller's next page commit
raises ``FencedOut`` and it stops without moving the cursor or deciding anything; items it
archived again are dropped by the archive's unique key, and a pending action sent twice carries
the same msgid, which WeCom delivers once. Tokens are written to the fallback as well, and
"again" flags go there when Redis does not take them, so a worker keeps what it was told during
the outage. A command cut off by the deadline may
still set a lock when a frozen Redis resumes; it lapses after its lease like a dead holder's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

__all__ = ["TOKEN_TTL_S", "FencedOut", "Lease", "MemoryPullLocks", "PullLocks", "RedisPullLocks"]

lock_log = logging.getLogger("sentinel.pull_lock")


class FencedOut(Exception):
    """A newer puller claimed the stream (its cursor row's fence): this one must stop without
    writing."""


#: A callback's pull token is valid 10 minutes; keep it a little less.
TOKEN_TTL_S = 540

_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)


class Lease(Protocol):
    """A held pull lock; ``lost`` turns true when it could not be renewed."""

    @property
    def lost(self) -> bool:
        """Whether another puller may hold the lock now (stop after the current step)."""

    async def release(self) -> None:
        """Give the lock up (only if still ours); idempotent."""


class PullLocks(Protocol):
    """The lock, again flags and tokens of every stream, shared by the workers."""

    async def acquire(self, stream: str) -> Lease | None:
        """Take the stream's pull lock, or None when another puller holds it."""

    async def request_again(self, stream: str) -> None:
        """Ask the current holder to pull once more before it stops."""

    async def take_again(self, stream: str) -> bool:
        """Clear the again flag; whether it was set."""

    async def again_requested(self, stream: str) -> bool:
        """Whether the again flag is still set (no holder has taken it yet)."""

    async def lease_left(self, stream: str) -> float:
        """Seconds until the current holder's lock lapses unless renewed (0 when free)."""

    async def put_token(self, stream: str, token: str) -> None:
        """Remember the newest callback token for the stream."""

    async def token(self, stream: str) -> str:
        """The newest unexpired token, or ""."""

    async def drop_token(self, stream: str, token: str) -> None:
        """Forget ``token`` (WeCom refused it) unless a newer one replaced it."""

    async def close(self) -> None:
        """Release what this object holds."""


class _RedisLease:
    def __init__(self, client: aioredis.Redis, key: str, owner: str, lease_ms: int) -> None:
        self._client, self._key, self._owner, self._lease_ms = client, key, owner, lease_ms
        self._lost = False
        self._renew_failing = False
        self._renewer = asyncio.create_task(self._renew(), name=f"sentinel-lease:{key}")

    @property
    def lost(self) -> bool:
        return self._lost

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            try:
                renewed = await self._client.eval(_RENEW, 1, self._key, self._owner, self._lease_ms)
            except Exception as exc:  # Redis away: the lease may lapse; fencing still protects
                if not self._renew_failing:
                    self._renew_failing = True
                    lock_log.warning("pull lock renewal failed (%s); fencing guards the pull", exc)
                continue
            self._renew_failing = False
            if not renewed:
                lock_log.warning("pull lock %s was lost; stopping this pull", self._key)
                self._lost = True
                return

    async def release(self) -> None:
        self._renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._renewer
        if self._lost:
            return
        self._lost = True
        try:
            await self._client.eval(_RELEASE, 1, self._key, self._owner)
        except Exception as exc:  # it expires by itself after the lease
            lock_log.warning("pull lock release failed (%s); it expires on its own", exc)


class RedisPullLocks:
    """Pull locks in Redis, shared by every worker and host (keys under ``prefix``); in-process
    while Redis does not answer (see the module docstring)."""

    def __init__(
        self, client: aioredis.Redis, *, prefix: str, namespace: str = "kf", lease_s: float = 30.0
    ) -> None:
        self._client = client
        self._prefix = f"{prefix}{namespace}:"
        self._lease_ms = int(lease_s * 1000)
        self._local = MemoryPullLocks()

    def _key(self, kind: str, stream: str) -> str:
        return f"{self._prefix}{kind}:{stream}"

    async def acquire(self, stream: str) -> Lease | None:
        key, owner = self._key("lock", stream), secrets.token_hex(16)
        try:
            taken = await self._client.set(key, owner, nx=True, px=self._lease_ms)
        except RedisError as exc:
            lock_log.debug("%s: Redis unavailable (%s); in-process pull lock", stream, exc)
            return await self._local.acquire(stream)
        if not taken:
            return None
        return _RedisLease(self._client, key, owner, self._lease_ms)

    async def request_again(self, stream: str) -> None:
        try:
            await self._client.set(self._key("again", stream), 1, ex=TOKEN_TTL_S)
        except RedisError:
            await self._local.request_again(stream)

    async def take_again(self, stream: str) -> bool:
        taken = await self._local.take_again(stream)  # a request made during an outage
        try:
            return bool(await self._client.delete(self._key("again", stream))) or taken
        except RedisError:
            return taken

    async def again_requested(self, stream: str) -> bool:
        try:
            return bool(await self._client.exists(self._key("again", stream)))
        except RedisError:
            return await self._local.again_requested(stream)

    async def lease_left(self, stream: str) -> float:
        try:
            left = await self._client.pttl(self._key("lock", stream))
        except RedisError:
            return 0.0  # no shared holder can be seen: nothing to wait for
        return max(int(left), 0) / 1000  # -2: no lock, -1: no expiry (not ours to wait for)

    async def put_token(self, stream: str, token: str) -> None:
        await self._local.put_token(stream, token)
        with contextlib.suppress(RedisError):
            await self._client.set(self._key("token", stream), token, ex=TOKEN_TTL_S)

    async def token(self, stream: str) -> str:
        try:
            value = await self._client.get(self._key("token", stream))
        except RedisError:
            return await self._local.token(stream)
        return value.decode() if isinstance(value, bytes) else (value or "")

    async def drop_token(self, stream: str, token: str) -> None:
        await self._local.drop_token(stream, token)
        with contextlib.suppress(RedisError):
            await self._client.eval(_RELEASE, 1, self._key("token", stream), token)

    async def close(self) -> None:
        """Nothing to do: the Redis client belongs to the caller."""


class _MemoryLease:
    def __init__(self, held: set[str], stream: str) -> None:
        self._held, self._stream = held, stream
        self._released = False

    @property
    def lost(self) -> bool:
        return False

    async def release(self) -> None:
        if not self._released:
            self._released = True
            self._held.discard(self._stream)


class MemoryPullLocks:
    """The same in one process (no Redis: only one worker may run)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._held: set[str] = set()
        self._again: set[str] = set()
        self._tokens: dict[str, tuple[str, float]] = {}

    async def acquire(self, stream: str) -> Lease | None:
        if stream in self._held:
            return None
        self._held.add(stream)
        return _MemoryLease(self._held, stream)

    async def request_again(self, stream: str) -> None:
        self._again.add(stream)

    async def take_again(self, stream: str) -> bool:
        if stream in self._again:
            self._again.discard(stream)
            return True
        return False

    async def again_requested(self, stream: str) -> bool:
        return stream in self._again

    async def lease_left(self, stream: str) -> float:
        return 0.0  # the holder is in this process, alive, and sees the flag when it releases

    async def put_token(self, stream: str, token: str) -> None:
        self._tokens[stream] = (token, self._clock() + TOKEN_TTL_S)

    async def token(self, stream: str) -> str:
        token, expiry = self._tokens.get(stream, ("", 0.0))
        return token if expiry > self._clock() else ""

    async def drop_token(self, stream: str, token: str) -> None:
        if self._tokens.get(stream, ("", 0.0))[0] == token:
            del self._tokens[stream]

    async def close(self) -> None:
        """Nothing to release."""
