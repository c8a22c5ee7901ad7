"""Token caches and single-flight refresh: in-process and across workers on the real Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from tests.support.waiting import until_async
from wecom_sdk.client import MemoryTokenCache, RedisTokenCache, TokenManager, WeComClient, token_key
from wecom_sdk.testing.fake_api import FakeWeCom


async def _gone(redis: aioredis.Redis, key: str) -> bool:
    return not await redis.exists(key)


@pytest.fixture
async def fake_server(aiohttp_server: Any) -> tuple[FakeWeCom, TestServer]:
    fake = FakeWeCom()
    return fake, await aiohttp_server(fake.app)


def _client(fake: FakeWeCom, server: TestServer, **kw: Any) -> WeComClient:
    return WeComClient(
        fake.corp_id,
        fake.secret,
        api_base=str(server.make_url("/cgi-bin/")),
        agent_id=1000002,
        **kw,
    )


async def test_token_key_hides_secret() -> None:
    key = token_key("wwcorp", "s3cret-app-secret")
    assert "s3cret" not in key and key.startswith("token:wwcorp:")
    assert key != token_key("wwcorp", "other-secret")


async def test_memory_cache_ttl_and_compare_and_delete() -> None:
    now = [1000.0]
    cache = MemoryTokenCache(clock=lambda: now[0])
    await cache.set("k", "t1", 10)
    assert await cache.get("k") == "t1"
    assert not await cache.delete_if("k", "other")
    now[0] += 11
    assert await cache.get("k") is None


async def test_ttl_is_expires_in_minus_300() -> None:
    now = [0.0]
    cache = MemoryTokenCache(clock=lambda: now[0])

    async def fetch() -> tuple[str, int]:
        return "t", 7200

    manager = TokenManager(fetch, cache, "k")
    await manager.get()
    now[0] = 6899
    assert await cache.get("k") == "t"
    now[0] = 6901
    assert await cache.get("k") is None


async def test_memory_single_flight_20_calls_one_fetch(fake_server: Any) -> None:
    fake, server = fake_server
    fake.delay("gettoken", 0.1)
    async with _client(fake, server) as client:
        results = await asyncio.gather(
            *(client.message.send_text("u1", f"m{i}") for i in range(20))
        )
    assert len(results) == 20 and fake.token_fetches == 1
    assert len(fake.calls) == 20


async def test_token_cached_and_reused(fake_server: Any) -> None:
    fake, server = fake_server
    async with _client(fake, server) as client:
        for i in range(3):
            await client.message.send_text("u1", f"m{i}")
    assert fake.token_fetches == 1
    assert {c.token for c in fake.calls} == {fake.current_token}


async def test_three_workers_on_redis_fetch_once(
    fake_server: Any, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    fake, server = fake_server
    fake.delay("gettoken", 0.2)
    clients = [
        _client(fake, server, token_cache=RedisTokenCache(redis_client, redis_prefix))
        for _ in range(3)
    ]
    try:
        await asyncio.gather(
            *(
                c.message.send_text("u1", f"w{i}-{j}")
                for i, c in enumerate(clients)
                for j in range(3)
            )
        )
    finally:
        for c in clients:
            await c.close()
    assert fake.token_fetches == 1
    assert len(fake.calls) == 9
    stored = await redis_client.get(redis_prefix + token_key(fake.corp_id, fake.secret))
    assert fake.current_token is not None and stored == fake.current_token.encode()
    ttl = await redis_client.pttl(redis_prefix + token_key(fake.corp_id, fake.secret))
    assert 6800_000 < ttl <= 6900_000
    # The lock is gone (released by its owner); only the token key remains, secret-free.
    keys = [k.decode() async for k in redis_client.scan_iter(match=f"{redis_prefix}*")]
    assert keys == [redis_prefix + token_key(fake.corp_id, fake.secret)]
    assert fake.secret not in keys[0]


async def test_redis_lock_released_only_by_owner(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    cache = RedisTokenCache(redis_client, redis_prefix, lock_ttl_s=5)
    owner = await cache.try_lock("k")
    assert owner is not None
    assert await cache.try_lock("k") is None
    assert not await cache.unlock("k", "not-the-owner")
    assert await redis_client.exists(f"{redis_prefix}k:lock")
    assert await cache.unlock("k", owner)
    # An owner whose lock expired and was taken over must not release the new holder's lock.
    short = RedisTokenCache(redis_client, redis_prefix, lock_ttl_s=0.05)
    stale = await short.try_lock("k")
    await until_async(
        lambda: _gone(redis_client, f"{redis_prefix}k:lock"), "the short lock to expire"
    )
    fresh = await cache.try_lock("k")
    assert stale is not None and fresh is not None
    assert not await short.unlock("k", stale)
    assert await redis_client.get(f"{redis_prefix}k:lock") == fresh.encode()
    await cache.unlock("k", fresh)


async def test_redis_delete_if_keeps_newer_token(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    cache = RedisTokenCache(redis_client, redis_prefix)
    await cache.set("k", "new", 60)
    assert not await cache.delete_if("k", "old")
    assert await cache.get("k") == "new"
    assert await cache.delete_if("k", "new")
    assert await cache.get("k") is None
