"""Reply cooldowns: the same customer does not get the same reply rule's answer again within
the rule's ``cooldown_s``.

The rules engine chooses the reply rule; the inspect stage then asks :meth:`ReplyCooldowns.take`
once, and only for a rule with ``cooldown_s > 0``. A rule in cooldown is not answered and no other
rule answers in its place (the customer was just answered).

:class:`RedisCooldowns` (several workers): ``SET prefix+cooldown:<customer>:<rule> 1 NX EX
cooldown_s``, so every worker sees the same cooldowns. :class:`MemoryCooldowns` is the
one-process fallback (no Redis: one worker only): a bounded LRU of last-answered times.

A cooldown store never fails a message: when Redis does not answer, the reply is allowed and the
outage is logged once (and its end once).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis

from bot.log import pipeline_log
from rules.models import ReplyRule

__all__ = ["DEFAULT_CAPACITY", "MemoryCooldowns", "RedisCooldowns", "ReplyCooldowns"]

#: How many (customer, reply rule) entries the in-process store keeps before forgetting the oldest.
DEFAULT_CAPACITY = 100_000


class ReplyCooldowns(Protocol):
    """Who was answered by which reply rule, and when: the per-customer reply gate."""

    async def take(self, customer_id: str, rule: ReplyRule) -> bool:
        """Whether ``rule`` may answer ``customer_id`` now; records the answer if so.

        Never raises: a store that cannot tell allows the reply.
        """
        ...


class MemoryCooldowns:
    """In-process cooldowns: at most ``capacity`` (customer, rule) entries, least recent dropped.

    Only for a single worker (another process would not see them); lost on restart.
    """

    def __init__(
        self, *, capacity: int = DEFAULT_CAPACITY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._clock = clock
        #: (customer, rule name) -> when the customer was last answered by the rule.
        self._answered: OrderedDict[tuple[str, str], float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._answered)

    async def take(self, customer_id: str, rule: ReplyRule) -> bool:
        """Whether ``rule`` may answer ``customer_id`` now; records the answer if so."""
        if rule.cooldown_s <= 0:
            return True
        now = self._clock()
        key = (customer_id, rule.name)
        last = self._answered.get(key)
        if last is not None and now - last < rule.cooldown_s:
            return False
        self._answered[key] = now
        self._answered.move_to_end(key)
        while len(self._answered) > self._capacity:
            self._answered.popitem(last=False)
        return True


class RedisCooldowns:
    """Cooldowns in Redis, shared by every worker and host (keys under ``prefix``).

    The Redis client is the caller's (the app creates and closes it).
    """

    def __init__(self, redis: aioredis.Redis, *, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}cooldown:"
        self._failing = False

    def key(self, customer_id: str, rule: ReplyRule) -> str:
        """The Redis key of (customer, rule); customer ids hold no ``:``, so it is unambiguous."""
        return f"{self._prefix}{customer_id}:{rule.name}"

    async def take(self, customer_id: str, rule: ReplyRule) -> bool:
        """Whether ``rule`` may answer ``customer_id`` now; records the answer if so."""
        if rule.cooldown_s <= 0:
            return True
        try:
            taken = await self._redis.set(
                self.key(customer_id, rule), b"1", nx=True, ex=rule.cooldown_s
            )
        except Exception as exc:  # Redis away: answer rather than fail or silence the message
            if not self._failing:
                self._failing = True
                pipeline_log.warning("reply cooldowns unavailable (%s); replies are allowed", exc)
            return True
        if self._failing:
            self._failing = False
            pipeline_log.info("reply cooldowns available again")
        return bool(taken)
