"""Reply cooldowns: the in-process LRU and the real Redis, the inspect stage that applies them, and
the app's wiring (one cooldown across workers sharing Redis)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from bot.config import StorageConfig, load_config
from bot.inbound.context import ChannelFacts, Context, Services
from bot.inbound.cooldowns import MemoryCooldowns, RedisCooldowns, ReplyCooldowns
from bot.inbound.pipeline import InspectStage
from bot.shared_state import create_redis
from bot.web.app import create_app
from rules.engine import RuleEngine
from rules.models import Audience, ReplyRule, TextReplyContent
from tests.support.app import (
    AES_KEY,
    CORP_ID,
    TOKEN,
    free_port,
    make_config,
    sample_reply,
    sealed_post,
    text_xml,
)
from tests.support.paths import REPO
from tests.support.redis_server import dedicated_redis
from wecom_sdk.crypto import MsgCrypto
from wecom_sdk.messages.callback import Message, TextMessage, parse
from wecom_sdk.xmlsafe import parse_xml

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


def rule(name: str, cooldown_s: int) -> ReplyRule:
    return ReplyRule(
        name=name,
        keywords=(name,),
        match="contains",
        reply=TextReplyContent(f"答复：{name}"),
        cooldown_s=cooldown_s,
    )


SHIPPING = rule("发货", 60)
PRICE = rule("价格", 60)
GREETING = rule("在吗", 0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Cooldowns:
    """A store and a way to let time pass for it."""

    store: ReplyCooldowns
    advance: Callable[[float], Awaitable[None]]


async def _age_redis_keys(client: aioredis.Redis, prefix: str, seconds: float) -> None:
    """Let ``seconds`` pass for the keys under ``prefix``: shorten their TTLs, drop the lapsed."""
    async for key in client.scan_iter(match=f"{prefix}*"):
        left = int(await client.pttl(key)) - int(seconds * 1000)
        if left > 0:
            await client.pexpire(key, left)
        else:
            await client.delete(key)


@pytest.fixture(params=["memory", "redis"])
def cooldowns(request: pytest.FixtureRequest) -> Cooldowns:
    if request.param == "memory":
        clock = FakeClock()

        async def tick(seconds: float) -> None:
            clock.now += seconds

        return Cooldowns(MemoryCooldowns(clock=clock), tick)
    client: aioredis.Redis = request.getfixturevalue("redis_client")
    prefix = str(request.getfixturevalue("redis_prefix"))
    return Cooldowns(
        RedisCooldowns(client, prefix=prefix),
        lambda seconds: _age_redis_keys(client, prefix, seconds),
    )


# -- the stores --------------------------------------------------------------------------------


async def test_cooldown_per_customer(cooldowns: Cooldowns) -> None:
    store = cooldowns.store

    async def answered(customer: str) -> bool:
        return await store.take(customer, SHIPPING)

    assert await answered("wm_a")
    await cooldowns.advance(59)
    assert not await answered("wm_a")  # within 60 s
    assert await answered("wm_b")  # another customer has their own cooldown
    assert await store.take("wm_a", PRICE)  # and so has another rule
    await cooldowns.advance(1)
    assert await answered("wm_a")  # 60 s after the first answer
    assert not await answered("wm_a")
    # A rule without cooldown answers every time.
    assert [await store.take("wm_a", GREETING) for _ in range(3)] == [True] * 3


async def test_concurrent_takes_have_one_winner(cooldowns: Cooldowns) -> None:
    wins = await asyncio.gather(*(cooldowns.store.take("wm_race", SHIPPING) for _ in range(20)))
    assert wins.count(True) == 1


async def test_cooldown_table_is_bounded() -> None:
    store = MemoryCooldowns(capacity=2, clock=FakeClock())
    for customer in ("a", "b", "c"):
        assert await store.take(customer, SHIPPING)
    # "a" was forgotten (oldest), so it is answered again; "c" is still cooling down.
    assert await store.take("a", SHIPPING)
    assert not await store.take("c", SHIPPING)
    assert len(store) == 2


def test_memory_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        MemoryCooldowns(capacity=0)


async def test_redis_key_lives_under_the_prefix_for_the_cooldown(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    store = RedisCooldowns(redis_client, prefix=redis_prefix)
    assert await store.take("wm_a", SHIPPING)
    key = f"{redis_prefix}cooldown:wm_a:发货"
    assert store.key("wm_a", SHIPPING) == key
    assert 0 < int(await redis_client.ttl(key)) <= 60
    assert await store.take("wm_a", GREETING)  # no cooldown: nothing written
    assert [k async for k in redis_client.scan_iter(match=f"{redis_prefix}*")] == [key.encode()]


class _FlakyRedis:
    """Answers ``SET`` or raises, as told."""

    def __init__(self) -> None:
        self.down = True

    async def set(self, *args: object, **kwargs: object) -> bool:
        if self.down:
            raise ConnectionError("Redis is away")
        return True


async def test_redis_outage_allows_replies_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    flaky = _FlakyRedis()
    store = RedisCooldowns(flaky, prefix="test:")  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="sentinel.pipeline"):
        assert await store.take("wm_a", SHIPPING)
        assert await store.take("wm_a", SHIPPING)  # answered again: the outage allows replies
        flaky.down = False
        assert await store.take("wm_a", SHIPPING)
        flaky.down = True
        assert await store.take("wm_a", SHIPPING)
    messages = [r.getMessage() for r in caplog.records if r.name == "sentinel.pipeline"]
    assert len(messages) == 3  # down, up again, down again: once each
    assert "unavailable" in messages[0] and "again" in messages[1] and "unavailable" in messages[2]


async def test_unreachable_redis_allows_the_reply(redis_prefix: str) -> None:
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        store = RedisCooldowns(client, prefix=redis_prefix)
        assert await store.take("wm_a", SHIPPING)
        assert await store.take("wm_a", SHIPPING)
    finally:
        await client.aclose()


# -- the inspect stage applies them ------------------------------------------------------------

REPLIES = """\
[[reply]]
name = "发货"
keywords = ["发货"]
reply = "48 小时内发货"
cooldown_s = 60

[[reply]]
name = "人工"
keywords = ["人工"]
reply = "这就为您转人工"
handoff = true
"""

CONFIG = load_config(REPO / "config.example.toml", {})


@pytest.fixture
def engine(tmp_path: Path) -> RuleEngine:
    (tmp_path / "replies.toml").write_text(REPLIES, encoding="utf-8")
    return RuleEngine([tmp_path])


def text_msg(content: str, from_user: str) -> Message:
    return parse(
        f"<xml><ToUserName>{CORP_ID}</ToUserName><FromUserName>{from_user}</FromUserName>"
        f"<CreateTime>1700000000</CreateTime><MsgType>text</MsgType><Content>{content}</Content>"
        "<MsgId>1</MsgId><AgentID>1000002</AgentID></xml>"
    )


async def chosen_reply(
    stage: InspectStage, text: str, customer: str, *, passive_reply: bool = True
) -> str | None:
    facts = ChannelFacts(
        channel="app" if passive_reply else "kf",
        raw="",
        passive_reply=passive_reply,
        author=Audience.ANY if passive_reply else Audience.CUSTOMER,
        customer_id=customer,
    )
    ctx = Context(facts, Services(CONFIG, logging.getLogger("test")))

    async def centre(msg: object, c: Context) -> None:
        return None

    await stage(centre, text_msg(text, customer), ctx)
    assert ctx.inspection is not None
    return ctx.inspection.reply.name if ctx.inspection.reply is not None else None


async def test_stage_suppresses_a_reply_in_cooldown(
    engine: RuleEngine, cooldowns: Cooldowns
) -> None:
    stage = InspectStage(engine, cooldowns.store)
    assert await chosen_reply(stage, "什么时候发货", "wm_a") == "发货"
    # In cooldown: no reply at all (no fall-through), for this customer only.
    assert await chosen_reply(stage, "什么时候发货", "wm_a") is None
    assert await chosen_reply(stage, "发货了吗", "wm_b") == "发货"
    await cooldowns.advance(60)
    assert await chosen_reply(stage, "什么时候发货", "wm_a") == "发货"
    # A rule without cooldown (the hand-off) answers every time.
    assert [await chosen_reply(stage, "转人工", "wm_a") for _ in range(2)] == ["人工"] * 2


async def test_stage_leaves_chat_channels_to_their_own_cooldowns(
    engine: RuleEngine, cooldowns: Cooldowns
) -> None:
    stage = InspectStage(engine, cooldowns.store)
    for _ in range(2):
        assert await chosen_reply(stage, "发货", "wm_a", passive_reply=False) == "发货"
    assert await chosen_reply(stage, "发货", "wm_a") == "发货"  # nothing was taken above


async def test_stage_answers_when_redis_is_away(engine: RuleEngine, redis_prefix: str) -> None:
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        stage = InspectStage(engine, RedisCooldowns(client, prefix=redis_prefix))
        assert await chosen_reply(stage, "发货", "wm_a") == "发货"
        assert await chosen_reply(stage, "发货", "wm_a") == "发货"
    finally:
        await client.aclose()


def test_the_engine_itself_keeps_no_cooldown(engine: RuleEngine) -> None:
    assert all(engine.inspect("发货").reply for _ in range(3))


# -- the app: one cooldown for every worker ----------------------------------------------------

PATH = "/wecom/callback"


def crypto() -> MsgCrypto:
    return MsgCrypto(TOKEN, AES_KEY, CORP_ID)


async def answer(client: TestClient[Any, Any], text: str, msg_id: int, from_user: str) -> str:
    """The passive reply's text ("" for an empty 200)."""
    body, query = sealed_post(crypto(), text_xml(text, msg_id, from_user))
    resp = await client.post(PATH, params=query, data=body)
    assert resp.status == 200
    raw = await resp.read()
    if not raw:
        return ""
    env = parse_xml(raw)
    plain = crypto().open(
        str(env["MsgSignature"]), str(env["TimeStamp"]), str(env["Nonce"]), str(env["Encrypt"])
    )
    reply = parse(plain)
    assert isinstance(reply, TextMessage)
    return reply.content


async def test_one_worker_without_redis(
    aiohttp_client: ClientFactory, tmp_path: Path, sqlite_url: str
) -> None:
    client = await aiohttp_client(create_app(make_config(tmp_path, sqlite_url)))
    shipping = sample_reply("发货物流")
    assert await answer(client, "什么时候发货", 8100, "zhangsan") == shipping
    assert await answer(client, "什么时候发货", 8101, "zhangsan") == ""
    assert await answer(client, "什么时候发货", 8102, "lisi") == shipping


async def test_workers_sharing_redis_share_the_cooldown(
    request: pytest.FixtureRequest,
    aiohttp_client: ClientFactory,
    tmp_path: Path,
    redis_client: aioredis.Redis,  # deletes the test's keys afterwards
    redis_prefix: str,
) -> None:
    config = make_config(
        tmp_path,
        request.getfixturevalue("pg_schema_url"),
        redis_url=request.getfixturevalue("redis_url"),
        redis_prefix=redis_prefix,
    )
    first, second = [await aiohttp_client(create_app(config)) for _ in range(2)]
    shipping = sample_reply("发货物流")
    assert await answer(first, "什么时候发货", 8200, "zhangsan") == shipping
    assert await answer(second, "什么时候发货", 8201, "zhangsan") == ""
    assert await answer(second, "什么时候发货", 8202, "lisi") == shipping
    assert await redis_client.exists(f"{redis_prefix}cooldown:zhangsan:发货物流")


async def test_frozen_redis_allows_the_reply_within_the_deadline(tmp_path: Path) -> None:
    with dedicated_redis(tmp_path) as server:
        client = create_redis(StorageConfig(redis_url=server.url))
        assert client is not None
        try:
            store = RedisCooldowns(client, prefix="test:")
            assert await store.take("wm_a", SHIPPING)
            assert not await store.take("wm_a", SHIPPING)  # cooling down
            server.freeze()
            start = time.monotonic()
            for _ in range(10):
                assert await store.take("wm_a", SHIPPING)  # cannot tell: the reply is allowed
            elapsed = time.monotonic() - start
            print(f"\nfrozen Redis: 10 cooldown lookups in {elapsed * 1000:.0f} ms")
            assert elapsed < 2.0
        finally:
            await client.aclose()
