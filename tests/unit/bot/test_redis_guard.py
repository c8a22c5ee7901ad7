"""The Redis guard: one deadline per call (pool wait included), the circuit breaker, its health
report and log lines, and the access-token cache falling back to in-process single-flight.

The breaker's logic runs on a fake clock; the deadline and the fallbacks run against a real
``redis-server`` of the test's own, frozen with SIGSTOP or killed (never the shared one).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.exceptions import ResponseError

from bot.config import ConfigError, StorageConfig
from bot.redis_guard import Circuit, RedisGuard, RedisUnavailable
from bot.shared_state import GuardedRedis, create_redis
from tests.support.redis_server import DedicatedRedis, dedicated_redis
from wecom_sdk.client import RedisTokenCache, TokenManager

#: A call may take its deadline (200 ms) plus this much on a loaded machine, never seconds.
SLACK_S = 0.8


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Calls:
    """A stand-in Redis command that fails (as an outage) or answers, as told; counts calls."""

    def __init__(self) -> None:
        self.down = True
        self.count = 0

    async def __call__(self) -> str:
        self.count += 1
        if self.down:
            raise ConnectionRefusedError("Connection refused")
        return "PONG"


async def fails(guard: RedisGuard, call: Calls) -> str:
    with pytest.raises(RedisUnavailable) as info:
        await guard.run(call)
    return str(info.value)


# -- the breaker ------------------------------------------------------------------------------


async def test_opens_after_k_failures_skips_redis_then_one_probe_closes_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    guard = RedisGuard(failures_to_open=3, cool_down_s=5, clock=clock, wall=lambda: 1.8e9)
    call = Calls()
    with caplog.at_level(logging.DEBUG, logger="sentinel.redis"):
        for _ in range(3):
            assert "Connection refused" in await fails(guard, call)
        assert guard.circuit is Circuit.OPEN and call.count == 3
        for _ in range(50):  # while open: no call reaches Redis
            await fails(guard, call)
        assert call.count == 3
        clock.now += 5
        assert "Connection refused" in await fails(guard, call)  # the probe, failing
        assert call.count == 4 and guard.circuit is Circuit.OPEN
        await fails(guard, call)  # a new cool-down started
        assert call.count == 4
        clock.now += 5
        call.down = False
        assert await guard.run(call) == "PONG"
        assert guard.circuit is Circuit.CLOSED and guard.health().ok
    logged = [(r.levelno, r.getMessage()) for r in caplog.records if r.levelno > logging.DEBUG]
    assert [level for level, _ in logged] == [logging.WARNING, logging.INFO]  # once each
    assert "unavailable" in logged[0][1] and "available again" in logged[1][1]


async def test_half_open_lets_exactly_one_probe_through() -> None:
    clock = FakeClock()
    guard = RedisGuard(failures_to_open=1, cool_down_s=1, clock=clock)
    call = Calls()
    await fails(guard, call)
    clock.now += 1
    release = asyncio.Event()

    async def slow_probe() -> str:
        await release.wait()
        return "PONG"

    probe = asyncio.create_task(guard.run(slow_probe))
    await asyncio.sleep(0)
    assert guard.circuit is Circuit.HALF_OPEN
    call.down = False
    await fails(guard, call)  # others fail at once while the probe is out
    assert call.count == 1
    release.set()
    assert await probe == "PONG"
    assert await guard.run(call) == "PONG"


async def test_a_cancelled_probe_leaves_the_next_call_to_probe() -> None:
    clock = FakeClock()
    guard = RedisGuard(failures_to_open=1, cool_down_s=1, clock=clock)
    await fails(guard, Calls())
    clock.now += 1
    probe = asyncio.create_task(guard.run(asyncio.Event().wait))
    await asyncio.sleep(0)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    call = Calls()
    call.down = False
    assert await guard.run(call) == "PONG"
    assert guard.circuit is Circuit.CLOSED


async def test_an_error_reply_is_an_answer_not_an_outage() -> None:
    guard = RedisGuard(failures_to_open=2, clock=FakeClock())
    call = Calls()
    await fails(guard, call)

    async def wrongtype() -> None:
        raise ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")

    with pytest.raises(ResponseError):
        await guard.run(wrongtype)
    assert guard.health().ok  # the failure run was broken by an answer
    await fails(guard, call)
    assert guard.circuit is Circuit.CLOSED  # 1 in a row, not 2


async def test_the_deadline_cuts_a_call_that_hangs() -> None:
    guard = RedisGuard(timeout_s=0.05, failures_to_open=1, clock=FakeClock())
    start = time.monotonic()
    with pytest.raises(RedisUnavailable, match="no answer within 50 ms"):
        await guard.run(asyncio.Event().wait)
    assert time.monotonic() - start < 0.05 + SLACK_S
    assert guard.circuit is Circuit.OPEN


async def test_health_says_since_when_and_why() -> None:
    wall = [1_800_000_000.0]
    clock = FakeClock()
    guard = RedisGuard(failures_to_open=2, cool_down_s=1, clock=clock, wall=lambda: wall[0])
    started = guard.health()
    assert started.ok and started.error == "" and started.since.timestamp() == wall[0]
    wall[0] += 10
    call = Calls()
    await fails(guard, call)
    first = guard.health()
    assert not first.ok and first.circuit is Circuit.CLOSED and first.failures == 1
    assert first.since.timestamp() == wall[0] and "Connection refused" in first.error
    wall[0] += 10
    await fails(guard, call)
    assert guard.health().since == first.since  # the outage began at the first failure
    assert guard.health().circuit is Circuit.OPEN
    wall[0] += 10
    clock.now += 1
    call.down = False
    await guard.run(call)
    back = guard.health()
    assert back.ok and back.since.timestamp() == wall[0] and back.error == ""


def test_bad_settings_are_refused() -> None:
    for kwargs in ({"timeout_s": 0}, {"failures_to_open": 0}, {"cool_down_s": 0}):
        with pytest.raises(ValueError):
            RedisGuard(**kwargs)  # type: ignore[arg-type]
    assert StorageConfig().redis_timeout_ms == 200
    for bad in (0, 5, 1001):
        with pytest.raises(ConfigError, match=r"\[storage\].redis_timeout_ms"):
            StorageConfig(redis_timeout_ms=bad)


# -- against a real redis-server, frozen or killed ----------------------------------------------


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[DedicatedRedis]:
    with dedicated_redis(tmp_path) as server:
        yield server


@pytest.fixture
async def client(redis_server: DedicatedRedis) -> AsyncIterator[GuardedRedis]:
    """The app's client on the dedicated server: 200 ms deadline, 2 connections at most."""
    created = create_redis(StorageConfig(redis_url=redis_server.url), max_connections=2)
    assert created is not None
    created.guard = RedisGuard(timeout_s=0.2, cool_down_s=0.3)  # a short cool-down for the test
    assert await created.ping()
    yield created
    await created.aclose()


async def timed_failure(client: GuardedRedis, key: str) -> float:
    start = time.monotonic()
    with pytest.raises(RedisUnavailable):
        await client.get(key)
    return time.monotonic() - start


async def wait_until_closed(client: GuardedRedis, timeout_s: float = 10.0) -> None:
    """Retry a command until the breaker lets it through and it succeeds."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await client.ping()
            return
        except RedisUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_a_frozen_redis_costs_each_call_its_deadline_pool_wait_included(
    client: GuardedRedis, redis_server: DedicatedRedis
) -> None:
    redis_server.freeze()
    # 6 calls at once on 2 connections: 4 of them wait for a pooled connection, within the
    # same deadline (the pool alone would make them wait its own timeout).
    client.guard = RedisGuard(timeout_s=0.2, failures_to_open=100)
    seconds = await asyncio.gather(*(timed_failure(client, f"k{n}") for n in range(6)))
    print(f"\nfrozen Redis, 6 calls on 2 connections: max {max(seconds) * 1000:.0f} ms")
    assert max(seconds) < 0.2 + SLACK_S
    assert min(seconds) >= 0.15  # they waited (for a connection), not refused at once


async def test_open_breaker_answers_at_once_then_recovers_with_correct_replies(
    client: GuardedRedis, redis_server: DedicatedRedis
) -> None:
    redis_server.freeze()
    for n in range(3):
        await timed_failure(client, f"k{n}")
    assert client.guard.circuit is Circuit.OPEN
    skipped = [await timed_failure(client, "k") for _ in range(20)]
    assert max(skipped) < 0.05  # no call waits while the breaker is open
    redis_server.thaw()
    await wait_until_closed(client)
    # No reply of a command cut off while frozen is read as the answer to a later one.
    for n in range(50):
        await client.set(f"test:key:{n}", f"value-{n}")
    assert [await client.get(f"test:key:{n}") for n in range(50)] == [
        f"value-{n}".encode() for n in range(50)
    ]


async def test_a_killed_redis_fails_fast_and_a_restarted_one_is_used_again(
    client: GuardedRedis, redis_server: DedicatedRedis
) -> None:
    redis_server.kill()
    seconds = [await timed_failure(client, "k") for _ in range(5)]
    assert max(seconds) < 0.2 + SLACK_S
    assert client.guard.circuit is Circuit.OPEN
    redis_server.start()  # same port; the pooled connections are stale
    await wait_until_closed(client)
    assert await client.set("test:after", "1") and await client.get("test:after") == b"1"


async def test_token_cache_falls_back_to_in_process_single_flight(
    client: GuardedRedis, redis_server: DedicatedRedis
) -> None:
    fetches = 0

    async def fetch() -> tuple[str, int]:
        nonlocal fetches
        fetches += 1
        await asyncio.sleep(0.05)
        return f"token-{fetches}", 7200

    cache = RedisTokenCache(client, prefix="test:wecom:")
    manager = TokenManager(fetch, cache, "token:corp:abc")
    redis_server.freeze()
    start = time.monotonic()
    tokens = await asyncio.gather(*(manager.get() for _ in range(10)))
    assert set(tokens) == {"token-1"} and fetches == 1  # single flight in the process
    assert time.monotonic() - start < 3 * 0.2 + SLACK_S
    assert await manager.get() == "token-1" and fetches == 1  # kept in process
    assert await manager.invalidate("token-1")
    assert await manager.get() == "token-2"
