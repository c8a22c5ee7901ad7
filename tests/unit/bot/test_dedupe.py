"""WeCom retry dedupe: the in-process fallback, the real Redis, and a Redis that is away."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.config import StorageConfig
from bot.inbound.dedupe import DedupeStore, MemoryDedupe, RedisDedupe
from bot.shared_state import create_redis
from tests.support.redis_server import dedicated_redis


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> DedupeStore:
    if request.param == "memory":
        return MemoryDedupe()
    client = request.getfixturevalue("redis_client")
    return RedisDedupe(client, prefix=str(request.getfixturevalue("redis_prefix")))


async def test_seen_remember_cycle(store: DedupeStore) -> None:
    assert isinstance(store, DedupeStore)
    await store.ping()
    assert not await store.seen("msg-1")
    assert await store.remember("msg-1")
    assert await store.seen("msg-1")
    assert not await store.remember("msg-1")
    assert not await store.seen("msg-2")


async def test_concurrent_remember_has_one_winner(store: DedupeStore) -> None:
    wins = await asyncio.gather(*(store.remember("race") for _ in range(20)))
    assert wins.count(True) == 1


async def test_memory_ttl_expiry() -> None:
    clock = FakeClock()
    store = MemoryDedupe(ttl_s=600, clock=clock)
    assert await store.remember("a")
    clock.now += 300
    assert await store.remember("b")
    clock.now += 299.9
    assert await store.seen("a")
    clock.now += 0.1  # a is 600 s old
    assert not await store.seen("a")
    assert await store.seen("b")
    assert await store.remember("a")  # remembered afresh
    assert len(store) == 2


async def test_memory_bound_evicts_oldest() -> None:
    store = MemoryDedupe(max_entries=3, clock=FakeClock())
    for key in "abcd":
        assert await store.remember(key)
    assert len(store) == 3
    assert not await store.seen("a")
    assert [await store.seen(k) for k in "bcd"] == [True, True, True]


async def test_memory_close_forgets() -> None:
    store = MemoryDedupe()
    await store.remember("x")
    await store.close()
    assert not await store.seen("x")


def test_memory_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        MemoryDedupe(max_entries=0)
    with pytest.raises(ValueError):
        MemoryDedupe(ttl_s=0)


async def test_redis_sets_ttl_and_expires(redis_client: aioredis.Redis, redis_prefix: str) -> None:
    store = RedisDedupe(redis_client, ttl_s=1, prefix=redis_prefix)
    assert await store.remember("m")
    assert await redis_client.get(f"{redis_prefix}m") == b"1"
    assert 0 < await redis_client.pttl(f"{redis_prefix}m") <= 1000
    await redis_client.pexpire(f"{redis_prefix}m", 20)  # fast-forward instead of sleeping 1 s
    await asyncio.sleep(0.05)
    assert not await store.seen("m")
    assert await store.remember("m")


async def test_redis_default_ttl_and_prefix(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    store = RedisDedupe(redis_client, prefix=redis_prefix)
    await store.remember("k")
    assert 590 <= await redis_client.ttl(f"{redis_prefix}k") <= 600
    other = RedisDedupe(redis_client, prefix=f"{redis_prefix}other:")
    assert not await other.seen("k")  # prefixes keep deployments apart


async def test_redis_close_leaves_the_callers_client_open(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    store = RedisDedupe(redis_client, prefix=redis_prefix)
    await store.close()
    assert await redis_client.ping()
    with pytest.raises(ValueError):
        RedisDedupe(redis_client, ttl_s=0)


async def test_redis_away_lets_messages_through_fast_and_logs_nothing_per_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Frozen, then killed: ``seen`` says False (the archive key decides), ``remember`` does not
    raise, each within the client's deadline and then at once; no per-message log lines."""
    with dedicated_redis(tmp_path) as server:
        client = create_redis(StorageConfig(redis_url=server.url))
        assert client is not None
        try:
            store = RedisDedupe(client, prefix="test:dedupe:")
            assert await store.remember("m1") and await store.seen("m1")
            with caplog.at_level(logging.INFO):
                for outage in (server.freeze, server.kill):
                    outage()
                    start = time.monotonic()
                    for n in range(20):
                        assert not await store.seen("m1")
                        assert not await store.remember(f"m{n}")
                    elapsed = time.monotonic() - start
                    print(f"\n{outage.__name__}: 40 dedupe calls in {elapsed * 1000:.0f} ms")
                    assert elapsed < 2.0
        finally:
            await client.aclose()
    assert not [r for r in caplog.records if r.name == "sentinel.pipeline"]
