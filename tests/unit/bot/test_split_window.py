"""The split-message window stores: in process and in the real Redis, the same answers.

Each add answers the entries before it (oldest first), keeps the last ``messages`` entries, adds
a dedupe key once (a retry sees the same window as its first delivery), and is keyed by
(conversation, sender). Redis keys expire with the window; a Redis failure answers ``[]``.
"""

from __future__ import annotations

import logging

import pytest
import redis.asyncio as aioredis

from bot.inbound.split_window import (
    TAIL_CHARS,
    Fragment,
    MemorySplitWindow,
    RedisSplitWindow,
    SplitWindow,
    WindowKey,
)

KEY = WindowKey("kf:wkA:wmC", "wmC")


@pytest.fixture(params=["memory", "redis"])
def window(request: pytest.FixtureRequest) -> SplitWindow:
    if request.param == "memory":
        return MemorySplitWindow(messages=3)
    client = request.getfixturevalue("redis_client")
    prefix = request.getfixturevalue("redis_prefix")
    return RedisSplitWindow(client, prefix=prefix, messages=3, ttl_s=120)


def frag(n: int, text: str = "维") -> Fragment:
    return Fragment.of(f"msg:{n}", text, 1000 + n)


async def test_answers_the_entries_before_oldest_first_and_keeps_the_last_few(
    window: SplitWindow,
) -> None:
    assert await window.add(KEY, frag(1, "一")) == []
    assert await window.add(KEY, frag(2, "二")) == [frag(1, "一")]
    assert await window.add(KEY, frag(3, "三")) == [frag(1, "一"), frag(2, "二")]
    assert await window.add(KEY, frag(4, "四")) == [frag(1, "一"), frag(2, "二"), frag(3, "三")]
    assert await window.add(KEY, frag(5, "五")) == [frag(2, "二"), frag(3, "三"), frag(4, "四")]


async def test_a_retry_is_added_once_and_sees_the_window_of_its_first_delivery(
    window: SplitWindow,
) -> None:
    await window.add(KEY, frag(1))
    await window.add(KEY, frag(2))
    await window.add(KEY, frag(3))
    assert await window.add(KEY, frag(2)) == [frag(1)]
    assert await window.add(KEY, frag(1)) == []
    assert await window.add(KEY, frag(4)) == [frag(1), frag(2), frag(3)]


async def test_windows_are_per_conversation_and_sender(window: SplitWindow) -> None:
    await window.add(KEY, frag(1))
    assert await window.add(WindowKey("kf:wkA:wmC", "servicer1"), frag(2)) == []
    assert await window.add(WindowKey("kf:wkB:wmC", "wmC"), frag(3)) == []
    assert await window.add(KEY, frag(4)) == [frag(1)]


def test_a_long_message_keeps_its_tail_with_the_offset() -> None:
    text = "长" * 100 + "我要维"
    fragment = Fragment.of("msg:1", text, 1)
    assert len(fragment.text) == TAIL_CHARS
    assert text[fragment.offset :] == fragment.text
    assert Fragment.loads(fragment.dumps()) == fragment


async def test_redis_keys_expire_with_the_window(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    window = RedisSplitWindow(redis_client, prefix=redis_prefix, messages=3, ttl_s=120)
    await window.add(KEY, frag(1))
    ttl = await redis_client.ttl(window.key(KEY))
    assert 0 < ttl <= 120
    assert window.key(KEY) == f"{redis_prefix}split:wmC:kf:wkA:wmC"


async def test_redis_failure_answers_nothing_and_recovers(
    redis_client: aioredis.Redis, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sentinel.pipeline")
    broken = aioredis.Redis(port=1, socket_connect_timeout=0.2)  # nothing listens on port 1
    window = RedisSplitWindow(broken, prefix=redis_prefix, messages=3, ttl_s=120)
    assert await window.add(KEY, frag(1)) == []
    assert await window.add(KEY, frag(2)) == []
    warnings = [r for r in caplog.records if "split-message window unavailable" in r.message]
    assert len(warnings) == 1  # logged once per outage, not per message
    await broken.aclose()
    window._redis = redis_client  # the outage ends
    assert await window.add(KEY, frag(3)) == []
    assert await window.add(KEY, frag(4)) == [frag(3)]
    assert any("available again" in r.message for r in caplog.records)


async def test_memory_window_is_a_bounded_lru() -> None:
    window = MemorySplitWindow(messages=3, capacity=2)
    await window.add(WindowKey("c", "a"), frag(1))
    await window.add(WindowKey("c", "b"), frag(2))
    await window.add(WindowKey("c", "a"), frag(3))  # a is now the most recent
    await window.add(WindowKey("c", "d"), frag(4))  # b is dropped
    assert len(window) == 2
    assert await window.add(WindowKey("c", "b"), frag(5)) == []
    assert await window.add(WindowKey("c", "a"), frag(6)) == []  # dropped in turn by b
