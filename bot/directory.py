"""Names for the ids in archived chats: staff UserIDs through ``user/get``, customers'
external_userids through ``externalcontact/get``, cached so that an alert or a review page costs
WeCom a call per person and day at most.

:class:`NameDirectory` answers a name, or "" when it has none (the caller then shows the id):
an unknown id, an id it refuses to look up (not 1..128 visible ASCII characters: WeCom's ids
are letters, digits and ``_-@.``), a WeCom error or a lookup past its deadline. It never raises
for those, nor because Redis is away.

The cache: with the app's Redis, ``SET prefix + "name:<staff|customer>:<id>"`` with a TTL, shared
by every worker; a name found lives ``found_ttl_s`` (24 h), "no such person" ``missing_ttl_s``
(10 min, so a member or customer added since shows up soon) and a failed lookup
``error_ttl_s`` (1 min: WeCom gets one call per id and minute while it fails). Every answer also
goes into an in-process LRU of ``capacity`` entries with the same TTLs, which answers when there
is no Redis, when Redis fails (the outage is logged once, and its end), and for what Redis does
not hold. Lookups of the same id in one process share one call (single-flight), cache read
included. A failed lookup logs one WARNING line without secrets (ids and WeCom's errcode; the
client's errors never show the token), at most one line per kind and ``warn_interval_s``, the
lines skipped counted in the next.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.log import directory_log
from wecom_sdk.client import WeComClient
from wecom_sdk.errors import ApiError, WeComError

__all__ = [
    "DEFAULT_CAPACITY",
    "ERROR_TTL_S",
    "FOUND_TTL_S",
    "MISSING_TTL_S",
    "Kind",
    "NameDirectory",
    "valid_id",
]

FOUND_TTL_S = 24 * 3600.0
MISSING_TTL_S = 600.0
ERROR_TTL_S = 60.0
#: Entries the in-process cache keeps before forgetting the least recently used.
DEFAULT_CAPACITY = 10_000

#: Whose name: a member (staff) or an external contact (customer).
Kind = Literal["staff", "customer"]
#: What a lookup found, which sets how long it is cached.
_Outcome = Literal["found", "missing", "error"]

#: WeCom's "no such person" answers: unknown or malformed UserID (60111, 40003, 41009), no member
#: has the customer or a malformed external_userid (84061, 40096). Cached as missing.
_NOT_FOUND: dict[Kind, frozenset[int]] = {
    "staff": frozenset({60111, 40003, 41009}),
    "customer": frozenset({84061, 40096}),
}
_ID = re.compile(r"[!-~]{1,128}")


def valid_id(value: object) -> bool:
    """Whether ``value`` may be looked up (and used in a cache key): 1..128 visible ASCII
    characters, no space or control character."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


class _Lru:
    """At most ``capacity`` names with their expiry (``clock`` seconds); least recent dropped."""

    def __init__(self, capacity: int, clock: Callable[[], float]) -> None:
        self._capacity = capacity
        self._clock = clock
        self._entries: OrderedDict[tuple[Kind, str], tuple[str, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[Kind, str]) -> str | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: tuple[Kind, str], name: str, ttl_s: float) -> None:
        self._entries[key] = (name, self._clock() + ttl_s)
        self._entries.move_to_end(key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)


class _Throttle:
    """One WARNING line per kind and ``interval_s`` at most; the next line counts those skipped."""

    def __init__(self, interval_s: float, clock: Callable[[], float]) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def warning(self, kind: str, msg: str, *args: object, exc_info: bool = False) -> None:
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self._interval_s:
            self._skipped[kind] = self._skipped.get(kind, 0) + 1
            return
        self._last[kind] = now
        if skipped := self._skipped.pop(kind, 0):
            msg += " (%d more like it not logged)"
            args = (*args, skipped)
        directory_log.warning(msg, *args, exc_info=exc_info)


class NameDirectory:
    """Staff and customer names by id, from WeCom, cached in Redis and in process.

    Args:
        client: The app's WeCom client (its app must see the members, and may call the
            customer-contact API for customers' names).
        redis: The app's Redis client, None for none (then only the in-process cache).
        prefix: Key prefix of the app's Redis keys.
        clock: Monotonic seconds, for the in-process TTLs and the warning rate.
        found_ttl_s / missing_ttl_s / error_ttl_s: How long a name, a "no such person" and a
            failed lookup are kept.
        timeout_s: Deadline of one WeCom lookup (the client's retries included).
        redis_timeout_s: Deadline of one Redis command.
        capacity: Entries of the in-process cache.
        warn_interval_s: At most one warning per kind of failure in this many seconds.
    """

    def __init__(
        self,
        client: WeComClient,
        *,
        redis: aioredis.Redis | None = None,
        prefix: str = "",
        clock: Callable[[], float] = time.monotonic,
        found_ttl_s: float = FOUND_TTL_S,
        missing_ttl_s: float = MISSING_TTL_S,
        error_ttl_s: float = ERROR_TTL_S,
        timeout_s: float = 3.0,
        redis_timeout_s: float = 0.5,
        capacity: int = DEFAULT_CAPACITY,
        warn_interval_s: float = 60.0,
    ) -> None:
        if min(found_ttl_s, missing_ttl_s, error_ttl_s, timeout_s, redis_timeout_s) <= 0:
            raise ValueError("TTLs and timeouts must be positive")
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._client = client
        self._redis = redis
        self._prefix = f"{prefix}name:"
        self._ttl: dict[_Outcome, float] = {
            "found": found_ttl_s,
            "missing": missing_ttl_s,
            "error": error_ttl_s,
        }
        self._timeout_s = timeout_s
        self._redis_timeout_s = redis_timeout_s
        self._memory = _Lru(capacity, clock)
        self._warn = _Throttle(warn_interval_s, clock)
        self._inflight: dict[tuple[Kind, str], asyncio.Task[str]] = {}
        self._redis_failing = False

    def __len__(self) -> int:
        """Entries in the in-process cache."""
        return len(self._memory)

    def key(self, kind: Kind, ident: str) -> str:
        """The Redis key of a name (the id is the key's tail, so any id is unambiguous)."""
        return f"{self._prefix}{kind}:{ident}"

    async def staff_name(self, userid: str) -> str:
        """The member's name (``user/get``), "" when there is none to show."""
        return await self._lookup("staff", userid)

    async def customer_name(self, external_userid: str) -> str:
        """The customer's name as WeCom shows it (``name@corp_name`` for a WeCom user; see
        :attr:`ExternalContact.display_name`), "" when there is none to show."""
        return await self._lookup("customer", external_userid)

    async def _lookup(self, kind: Kind, ident: str) -> str:
        if not valid_id(ident):
            self._warn.warning(
                "invalid", "%s id not looked up: not 1..128 visible ASCII characters", kind
            )
            return ""
        key = (kind, ident)
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._resolve(kind, ident))
            self._inflight[key] = task
            task.add_done_callback(functools.partial(self._landed, key))
        # A waiter that is cancelled leaves the lookup running for the others (and the cache).
        return await asyncio.shield(task)

    def _landed(self, key: tuple[Kind, str], task: asyncio.Task[str]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]

    async def _resolve(self, kind: Kind, ident: str) -> str:
        cached = await self._cached(kind, ident)
        if cached is not None:
            return cached
        name, outcome = await self._fetch(kind, ident)
        ttl_s = self._ttl[outcome]
        self._memory.put((kind, ident), name, ttl_s)
        await self._redis_call(
            lambda redis: redis.set(self.key(kind, ident), name.encode(), px=round(ttl_s * 1000))
        )
        return name

    async def _cached(self, kind: Kind, ident: str) -> str | None:
        """Redis's entry, else the in-process one; None when neither has one."""
        raw = await self._redis_call(lambda redis: redis.get(self.key(kind, ident)))
        if raw is not None:
            return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        return self._memory.get((kind, ident))

    async def _fetch(self, kind: Kind, ident: str) -> tuple[str, _Outcome]:
        """Ask WeCom: the name and how long to keep it."""
        try:
            async with asyncio.timeout(self._timeout_s):
                if kind == "staff":
                    name = (await self._client.user.get(ident)).name
                else:
                    name = (await self._client.externalcontact.get(ident)).display_name
        except WeComError as exc:  # errors name the API path and errcode, never the token
            if isinstance(exc, ApiError) and exc.errcode in _NOT_FOUND[kind]:
                directory_log.debug("no %s %s in WeCom (errcode %s)", kind, ident, exc.errcode)
                return "", "missing"
            self._warn.warning(kind, "%s name of %s not resolved: %s", kind, ident, exc)
        except TimeoutError:
            self._warn.warning(
                kind,
                "%s name of %s not resolved: no answer within %.1f s",
                kind,
                ident,
                self._timeout_s,
            )
        except Exception:  # a bug of ours must not cost the alert its delivery
            self._warn.warning(kind, "%s name of %s not resolved", kind, ident, exc_info=True)
        else:
            return name, "found" if name else "missing"
        return "", "error"

    async def _redis_call(self, command: Callable[[aioredis.Redis], Awaitable[Any]]) -> Any:
        """``command(redis)`` within the deadline; None without Redis or when it fails."""
        if self._redis is None:
            return None
        try:
            async with asyncio.timeout(self._redis_timeout_s):
                result = await command(self._redis)
        except (RedisError, OSError) as exc:  # OSError: TimeoutError, refused connections
            if not self._redis_failing:
                self._redis_failing = True
                directory_log.warning(
                    "name cache in Redis unavailable (%s); names cached in process only",
                    str(exc) or type(exc).__name__,
                )
            return None
        if self._redis_failing:
            self._redis_failing = False
            directory_log.info("name cache in Redis available again")
        return result
