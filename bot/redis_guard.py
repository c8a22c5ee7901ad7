"""A deadline and a circuit breaker for every Redis call the app makes.

Redis only holds state that has a fallback (dedupe -> the archive's unique key, cooldowns -> allow
the reply, token cache -> in-process single-flight, kf pull locks -> in-process locks plus the
database fencing token), so a Redis that is away must cost a callback milliseconds, never WeCom's
5 s answer deadline. :class:`RedisGuard` runs each call under one deadline (``[storage]
redis_timeout_ms``; it covers waiting for a pooled connection, connecting, sending and reading)
and counts outages: after :data:`FAILURES_TO_OPEN` in a row it opens and every call fails at
once with :class:`RedisUnavailable` for :data:`COOL_DOWN_S`; then one call goes through as a probe
(half-open): its success closes the breaker, its failure opens it for another cool-down.

An outage is a connection error, a timeout or our deadline. A Redis error reply (``WRONGTYPE``,
``NOSCRIPT``...) means Redis answered: it counts as a success and propagates unchanged.

Transitions are logged once each (opened: WARNING, back: INFO; probes that fail: DEBUG), never per
call. :meth:`RedisGuard.health` is what ``/healthz`` shows: ok or not, since when, the last error.

A command cut off by the deadline may still run when a frozen server resumes; every key the app
writes carries a TTL, so such a leftover (a lock nobody holds, a dedupe key) expires by itself.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from redis import exceptions as redis_errors

__all__ = [
    "COOL_DOWN_S",
    "FAILURES_TO_OPEN",
    "Circuit",
    "RedisGuard",
    "RedisHealth",
    "RedisUnavailable",
    "redis_log",
]

redis_log = logging.getLogger("sentinel.redis")

#: Consecutive outages (errors or missed deadlines) that open the breaker.
FAILURES_TO_OPEN = 3
#: Seconds the open breaker skips Redis before letting one probe through.
COOL_DOWN_S = 5.0

#: What counts as Redis being away (rather than answering with an error).
_OUTAGES: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    OSError,
    TimeoutError,
)

T = TypeVar("T")


class RedisUnavailable(redis_errors.ConnectionError):
    """Redis did not answer in time, refused, or is being skipped while the breaker is open.

    A ``redis.ConnectionError`` (hence a ``redis.RedisError``), so every existing
    ``except RedisError`` treats it as the outage it is.
    """


class Circuit(enum.Enum):
    """The breaker's state."""

    CLOSED = "closed"  # calls go to Redis
    OPEN = "open"  # calls fail at once until the cool-down ends
    HALF_OPEN = "half-open"  # one probe call is in flight; the others fail at once


@dataclass(frozen=True, slots=True)
class RedisHealth:
    """Redis as the guard last saw it."""

    ok: bool
    #: When Redis last became ok (or the guard was created), or when the current outage began.
    since: datetime
    circuit: Circuit
    #: The last outage's description; "" while ok.
    error: str
    #: Outages in a row (0 while ok).
    failures: int


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class RedisGuard:
    """One deadline per call and a circuit breaker, shared by every user of one Redis client.

    ``clock`` (monotonic) times the cool-down; ``wall`` (epoch seconds) dates the health report.
    """

    def __init__(
        self,
        *,
        timeout_s: float = 0.2,
        failures_to_open: int = FAILURES_TO_OPEN,
        cool_down_s: float = COOL_DOWN_S,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if failures_to_open < 1:
            raise ValueError("failures_to_open must be at least 1")
        if cool_down_s <= 0:
            raise ValueError("cool_down_s must be positive")
        self.timeout_s = timeout_s
        self._failures_to_open = failures_to_open
        self._cool_down_s = cool_down_s
        self._clock = clock
        self._wall = wall
        self._circuit = Circuit.CLOSED
        self._failures = 0
        self._retry_at = 0.0  # monotonic time the open breaker lets a probe through
        self._opened_at = 0.0
        self._since = self._now()
        self._error = ""

    @property
    def circuit(self) -> Circuit:
        """The breaker's state."""
        return self._circuit

    def health(self) -> RedisHealth:
        """Ok or not, since when, and the last error (for ``/healthz``)."""
        ok = self._failures == 0 and self._circuit is Circuit.CLOSED
        return RedisHealth(
            ok, self._since, self._circuit, "" if ok else self._error, self._failures
        )

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """``await call()`` within the deadline, unless the breaker is open.

        Raises:
            RedisUnavailable: the breaker is open, or the call failed with an outage (chained).
            redis.RedisError: Redis answered with an error (passed through unchanged).
        """
        probe = self._admit()
        try:
            async with asyncio.timeout(self.timeout_s):
                result = await call()
        except _OUTAGES as exc:
            if isinstance(exc, TimeoutError) and not isinstance(exc, redis_errors.RedisError):
                reason = f"no answer within {self.timeout_s * 1000:.0f} ms"
            else:
                reason = _describe(exc)
            self._failed(reason)
            raise RedisUnavailable(reason) from exc
        except redis_errors.ResponseError:
            self._succeeded()  # Redis answered, with an error reply
            raise
        except BaseException:
            if probe:  # cancelled or a client-side error: the probe told nothing
                self._circuit = Circuit.OPEN
            raise
        self._succeeded()
        return result

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._wall(), UTC)

    def _admit(self) -> bool:
        """Whether the call may go to Redis as the half-open probe (True) or normally (False)."""
        if self._circuit is Circuit.CLOSED:
            return False
        if self._circuit is Circuit.OPEN and self._clock() >= self._retry_at:
            self._circuit = Circuit.HALF_OPEN
            return True
        raise RedisUnavailable(f"Redis skipped for a while after: {self._error}")

    def _failed(self, reason: str) -> None:
        if self._failures == 0:
            self._since = self._now()
        self._failures += 1
        self._error = reason
        now = self._clock()
        if self._circuit is Circuit.HALF_OPEN:
            self._circuit = Circuit.OPEN
            self._retry_at = now + self._cool_down_s
            redis_log.debug(
                "Redis probe failed (%s); skipping it %.0f s more", reason, self._cool_down_s
            )
        elif self._circuit is Circuit.CLOSED and self._failures >= self._failures_to_open:
            self._circuit = Circuit.OPEN
            self._opened_at = now
            self._retry_at = now + self._cool_down_s
            redis_log.warning(
                "Redis unavailable (%s); skipping it, with a probe every %.0f s. Meanwhile: "
                "dedupe by the archive key, replies without cooldowns, tokens and kf locks "
                "in-process",
                reason,
                self._cool_down_s,
            )

    def _succeeded(self) -> None:
        if self._circuit is not Circuit.CLOSED:
            redis_log.info("Redis available again after %.1f s", self._clock() - self._opened_at)
        if self._failures:
            self._since = self._now()
        self._circuit = Circuit.CLOSED
        self._failures = 0
        self._error = ""
