"""NameDirectory: names from the WeCom emulator, cached in the real Redis (shared by workers) and
in process (no Redis, or Redis away), single-flight, bounded, and quiet about failures."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.config import StorageConfig
from bot.directory import NameDirectory, valid_id
from bot.redis_guard import RedisGuard
from bot.shared_state import create_redis
from tests.support.app import free_port
from tests.support.redis_server import dedicated_redis
from wecom_sdk.client import WeComClient
from wecom_sdk.testing import EmulatorTransport, WeComEmulator

CUSTOMER = "wmAAAA1111bbbb2222cccc3333dddd44"
WECOM_CUSTOMER = "woBBBB1111bbbb2222cccc3333dddd55"
DAY_MS, TEN_MIN_MS, MINUTE_MS = 86_400_000, 600_000, 60_000


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def emulator() -> WeComEmulator:
    emulator = WeComEmulator()
    emulator.add_member("zhangsan", "张三")
    emulator.add_member("lisi", "李四")
    emulator.add_external_contact(CUSTOMER, "小王", follow_users=["zhangsan"])
    emulator.add_external_contact(
        WECOM_CUSTOMER, "赵六", type=2, corp_name="某公司", follow_users=["lisi"]
    )
    return emulator


@pytest.fixture
async def client(emulator: WeComEmulator) -> AsyncIterator[WeComClient]:
    async with WeComClient(
        emulator.corp_id, str(emulator.secret), transport=EmulatorTransport(emulator)
    ) as client:
        yield client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "redis"])
def directory(
    request: pytest.FixtureRequest, client: WeComClient, clock: FakeClock
) -> NameDirectory:
    """A directory caching in process only, or in the real Redis (under the test's prefix)."""
    if request.param == "memory":
        return NameDirectory(client, clock=clock)
    redis: aioredis.Redis = request.getfixturevalue("redis_client")
    prefix = str(request.getfixturevalue("redis_prefix"))
    return NameDirectory(client, redis=redis, prefix=prefix, clock=clock)


def lookups(emulator: WeComEmulator, path: str = "user/get") -> int:
    """Calls WeCom answered on ``path``, refusals included (a 60111 is a lookup too)."""
    return sum(1 for c in emulator.history if c.path == path)


async def age_redis_keys(client: aioredis.Redis, prefix: str, seconds: float) -> None:
    """Let ``seconds`` pass for the keys under ``prefix``: shorten their TTLs, drop the lapsed."""
    async for key in client.scan_iter(match=f"{prefix}*"):
        left = int(await client.pttl(key)) - int(seconds * 1000)
        if left > 0:
            await client.pexpire(key, left)
        else:
            await client.delete(key)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "sentinel.directory" and r.levelno >= logging.WARNING
    ]


# -- names, cached -----------------------------------------------------------------------------


async def test_names_are_looked_up_once(directory: NameDirectory, emulator: WeComEmulator) -> None:
    assert await directory.staff_name("zhangsan") == "张三"
    assert await directory.staff_name("zhangsan") == "张三"
    assert await directory.customer_name(CUSTOMER) == "小王"
    assert await directory.customer_name(WECOM_CUSTOMER) == "赵六@某公司"  # as WeCom shows it
    assert await directory.customer_name(WECOM_CUSTOMER) == "赵六@某公司"
    # Not found: "" (the caller shows the id), and cached too.
    assert await directory.staff_name("nobody") == ""
    assert await directory.staff_name("nobody") == ""
    assert await directory.customer_name("wmUNKNOWN") == ""
    assert await directory.customer_name("wmUNKNOWN") == ""
    assert lookups(emulator, "user/get") == 2
    assert lookups(emulator, "externalcontact/get") == 3
    # A staff id and a customer id never share an entry.
    assert await directory.customer_name("zhangsan") == ""
    assert lookups(emulator, "externalcontact/get") == 4


async def test_two_workers_share_the_redis_cache(
    emulator: WeComEmulator, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # Two workers: each its own WeCom client (own token) and directory, one Redis.
    secret = str(emulator.secret)
    async with (
        WeComClient(emulator.corp_id, secret, transport=EmulatorTransport(emulator)) as first,
        WeComClient(emulator.corp_id, secret, transport=EmulatorTransport(emulator)) as second,
    ):
        one = NameDirectory(first, redis=redis_client, prefix=redis_prefix)
        two = NameDirectory(second, redis=redis_client, prefix=redis_prefix)
        assert await one.staff_name("zhangsan") == "张三"
        assert await one.staff_name("nobody") == ""
        assert await one.customer_name(CUSTOMER) == "小王"
        assert await two.staff_name("zhangsan") == "张三"
        assert await two.staff_name("nobody") == ""
        assert await two.customer_name(CUSTOMER) == "小王"
    assert lookups(emulator, "user/get") == 2 and lookups(emulator, "externalcontact/get") == 1
    assert await redis_client.get(f"{redis_prefix}name:staff:zhangsan") == "张三".encode()
    assert one.key("customer", CUSTOMER) == f"{redis_prefix}name:customer:{CUSTOMER}"


async def test_redis_ttls_found_missing_and_failed(
    client: WeComClient, emulator: WeComEmulator, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    clock = FakeClock()
    directory = NameDirectory(client, redis=redis_client, prefix=redis_prefix, clock=clock)
    emulator.fail_next("user/get", 48002)  # the app may not read the member
    assert await directory.staff_name("lisi") == ""
    assert await directory.staff_name("zhangsan") == "张三"
    assert await directory.staff_name("nobody") == ""

    async def ttl(userid: str) -> int:
        return int(await redis_client.pttl(directory.key("staff", userid)))

    assert DAY_MS - 5_000 < await ttl("zhangsan") <= DAY_MS
    assert TEN_MIN_MS - 5_000 < await ttl("nobody") <= TEN_MIN_MS
    assert MINUTE_MS - 5_000 < await ttl("lisi") <= MINUTE_MS
    # The failure lapses after a minute: then the name is found.
    await age_redis_keys(redis_client, redis_prefix, 59)
    clock.now += 59
    assert await directory.staff_name("lisi") == ""
    await age_redis_keys(redis_client, redis_prefix, 1)
    clock.now += 1
    assert await directory.staff_name("lisi") == "李四"
    assert lookups(emulator) == 4


async def test_a_member_added_later_shows_once_not_found_lapses(
    client: WeComClient, emulator: WeComEmulator, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    clock = FakeClock()
    directory = NameDirectory(client, redis=redis_client, prefix=redis_prefix, clock=clock)
    assert await directory.staff_name("newbie") == ""
    emulator.add_member("newbie", "新人")
    await age_redis_keys(redis_client, redis_prefix, 599)
    clock.now += 599
    assert await directory.staff_name("newbie") == ""  # "not found" lives 10 min
    await age_redis_keys(redis_client, redis_prefix, 1)
    clock.now += 1
    assert await directory.staff_name("newbie") == "新人"
    assert lookups(emulator) == 2
    # Another worker sees the name at once; nobody asks WeCom again for a day.
    other = NameDirectory(client, redis=redis_client, prefix=redis_prefix)
    assert await other.staff_name("newbie") == "新人"
    assert lookups(emulator) == 2


async def test_in_process_ttls_follow_the_clock(
    client: WeComClient, emulator: WeComEmulator, clock: FakeClock
) -> None:
    directory = NameDirectory(client, clock=clock, found_ttl_s=100, missing_ttl_s=10, error_ttl_s=5)
    emulator.fail_next("user/get", 48002)
    assert await directory.staff_name("lisi") == ""  # failed: kept 5 s
    assert await directory.staff_name("zhangsan") == "张三"  # kept 100 s
    assert await directory.staff_name("nobody") == ""  # kept 10 s
    clock.now += 4.9
    for userid in ("lisi", "zhangsan", "nobody"):
        await directory.staff_name(userid)
    assert lookups(emulator) == 3
    clock.now += 0.1
    assert await directory.staff_name("lisi") == "李四"
    clock.now += 5
    assert await directory.staff_name("nobody") == ""
    assert lookups(emulator) == 5
    clock.now += 90
    assert await directory.staff_name("zhangsan") == "张三"
    assert lookups(emulator) == 6


async def test_the_in_process_cache_is_bounded(
    client: WeComClient, emulator: WeComEmulator
) -> None:
    directory = NameDirectory(client, capacity=2)
    for userid in ("zhangsan", "lisi", "nobody"):
        await directory.staff_name(userid)
    assert len(directory) == 2
    assert await directory.staff_name("lisi") == "李四"  # kept
    assert lookups(emulator) == 3
    assert await directory.staff_name("zhangsan") == "张三"  # the oldest was dropped
    assert lookups(emulator) == 4
    assert len(directory) == 2


# -- single-flight -----------------------------------------------------------------------------


async def test_concurrent_lookups_of_one_id_make_one_call(
    directory: NameDirectory, emulator: WeComEmulator
) -> None:
    emulator.delay("user/get", 0.05)
    emulator.delay("externalcontact/get", 0.05)
    names = await asyncio.gather(
        *(directory.staff_name("zhangsan") for _ in range(20)),
        *(directory.staff_name("nobody") for _ in range(20)),
        *(directory.customer_name(CUSTOMER) for _ in range(20)),
    )
    assert names == ["张三"] * 20 + [""] * 20 + ["小王"] * 20
    assert lookups(emulator, "user/get") == 2  # one per id
    assert lookups(emulator, "externalcontact/get") == 1
    assert [c.body for c in emulator.calls_to("user/get")] == [{"userid": "zhangsan"}]


async def test_a_cancelled_waiter_leaves_the_lookup_to_the_others(
    directory: NameDirectory, emulator: WeComEmulator
) -> None:
    emulator.delay("user/get", 0.05)
    first = asyncio.create_task(directory.staff_name("zhangsan"))
    second = asyncio.create_task(directory.staff_name("zhangsan"))
    await asyncio.sleep(0.01)
    first.cancel()
    assert await second == "张三"
    assert first.cancelled()
    assert lookups(emulator) == 1
    assert await directory.staff_name("zhangsan") == "张三"  # and it was cached
    assert lookups(emulator) == 1


# -- failures ----------------------------------------------------------------------------------


async def test_wecom_errors_answer_empty_with_rate_limited_warnings(
    directory: NameDirectory,
    emulator: WeComEmulator,
    client: WeComClient,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator.fail_next("user/get", 48002, times=3)
    caplog.set_level(logging.DEBUG, logger="sentinel")
    assert [await directory.staff_name(u) for u in ("zhangsan", "lisi", "wangwu")] == [""] * 3
    warned = warnings_of(caplog)
    assert len(warned) == 1
    assert "staff name of zhangsan not resolved" in warned[0] and "48002" in warned[0]
    clock.now += 61
    emulator.fail_next("user/get", 48002)
    assert await directory.staff_name("zhaoliu") == ""
    warned = warnings_of(caplog)
    assert len(warned) == 2 and "(2 more like it not logged)" in warned[1]
    # Customers have their own allowance; not found is no warning.
    emulator.fail_next("externalcontact/get", 48002)
    assert await directory.customer_name(CUSTOMER) == ""
    assert await directory.customer_name("wmUNKNOWN") == ""
    assert len(warnings_of(caplog)) == 3
    token = emulator.state.current_token
    assert token and token not in caplog.text and str(emulator.secret) not in caplog.text


async def test_a_slow_wecom_answers_empty_within_the_deadline(
    client: WeComClient, emulator: WeComEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    directory = NameDirectory(client, timeout_s=0.2)
    emulator.delay("user/get", 5)
    start = time.monotonic()
    assert await directory.staff_name("zhangsan") == ""
    assert time.monotonic() - start < 1
    assert any("no answer within 0.2 s" in w for w in warnings_of(caplog))
    emulator.delay("user/get", 0)
    assert await directory.staff_name("zhangsan") == ""  # the failure is kept a minute
    assert emulator.calls_to("user/get") == []


@pytest.mark.parametrize("bad", ["", "a" * 129, "zhang san", "a\nb", "张三", "a\x00"])
async def test_invalid_ids_are_not_looked_up(
    directory: NameDirectory, emulator: WeComEmulator, bad: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert not valid_id(bad)
    assert await directory.staff_name(bad) == ""
    assert await directory.customer_name(bad) == ""
    assert emulator.history == [] and len(directory) == 0
    assert len(warnings_of(caplog)) == 1  # once, however many
    if bad:
        assert bad not in caplog.text  # nor is the id itself logged


def test_valid_ids() -> None:
    assert valid_id("zhangsan") and valid_id(CUSTOMER) and valid_id("a" * 128)
    assert valid_id("li.si@corp-1_x")
    assert not valid_id(None) and not valid_id(123)


def test_settings_are_checked(client: WeComClient) -> None:
    with pytest.raises(ValueError, match="capacity"):
        NameDirectory(client, capacity=0)
    with pytest.raises(ValueError, match="positive"):
        NameDirectory(client, missing_ttl_s=0)
    with pytest.raises(ValueError, match="positive"):
        NameDirectory(client, timeout_s=-1)


# -- Redis away --------------------------------------------------------------------------------


async def test_unreachable_redis_falls_back_to_the_process(
    client: WeComClient, emulator: WeComEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    redis = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        directory = NameDirectory(client, redis=redis, prefix="test:")
        for _ in range(3):
            assert await directory.staff_name("zhangsan") == "张三"
            assert await directory.staff_name("nobody") == ""
        assert lookups(emulator) == 2
    finally:
        await redis.aclose()
    warned = warnings_of(caplog)
    assert len(warned) == 1 and "name cache in Redis unavailable" in warned[0]


async def test_redis_going_away_and_coming_back(
    client: WeComClient, emulator: WeComEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sentinel.directory")
    with dedicated_redis(tmp_path) as server:
        redis = create_redis(StorageConfig(redis_url=server.url))  # the app's guarded client
        assert redis is not None
        breaker = FakeClock()  # times the guard's cool-down: no waiting for its 5 s
        redis.guard = RedisGuard(timeout_s=redis.guard.timeout_s, clock=breaker)
        try:
            directory = NameDirectory(client, redis=redis, prefix="test:")
            assert await directory.staff_name("zhangsan") == "张三"
            server.kill()
            start = time.monotonic()
            for _ in range(5):
                assert await directory.staff_name("zhangsan") == "张三"  # in process
                assert await directory.staff_name("lisi") == "李四"
            assert time.monotonic() - start < 2
            assert lookups(emulator) == 2
            server.start()
            breaker.now += 5  # the open breaker lets a probe through
            assert await directory.staff_name("wangwu") == ""
            assert await redis.get("test:name:staff:wangwu") == b""
        finally:
            await redis.aclose()
    messages = [r.getMessage() for r in caplog.records if r.name == "sentinel.directory"]
    assert any("unavailable" in m for m in messages)
    assert messages[-1] == "name cache in Redis available again"
