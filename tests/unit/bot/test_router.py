"""Router and filters: first match wins, composable filters, included routers, filter data."""

from __future__ import annotations

import logging

from bot.config import SAMPLE_RULES, load_config
from bot.handlers import build_root_router
from bot.handlers.filters import EventIs, Func, Keyword, MsgType, Regex
from bot.handlers.router import UNHANDLED, Router
from bot.inbound.context import ChannelFacts, Context, Services
from rules.engine import RuleEngine
from rules.models import Audience
from tests.support.app import sample_reply
from tests.support.paths import REPO
from wecom_sdk.messages.callback import Message, parse
from wecom_sdk.replies import NewsReply, TextReply

EXAMPLE = REPO / "config.example.toml"


def text_msg(content: str) -> Message:
    return parse(
        "<xml><ToUserName>wx5823bf96d3bd56c7</ToUserName><FromUserName>zhangsan</FromUserName>"
        f"<CreateTime>1700000000</CreateTime><MsgType>text</MsgType><Content><![CDATA[{content}]]>"
        "</Content><MsgId>1</MsgId><AgentID>1000002</AgentID></xml>"
    )


def event_msg(event: str) -> Message:
    return parse(
        "<xml><ToUserName>wx5823bf96d3bd56c7</ToUserName><FromUserName>zhangsan</FromUserName>"
        f"<CreateTime>1700000000</CreateTime><MsgType>event</MsgType><Event>{event}</Event>"
        "<AgentID>1000002</AgentID></xml>"
    )


def ctx() -> Context:
    facts = ChannelFacts(channel="app", raw="", passive_reply=True)
    return Context(facts, Services(load_config(EXAMPLE, {}), logging.getLogger("test")))


async def test_first_match_wins_and_unhandled() -> None:
    router = Router("t")
    calls: list[str] = []

    @router.text(Keyword("退货"))
    async def first(msg: Message, c: Context) -> str:
        calls.append("first")
        return "a"

    @router.text(Keyword("退"))
    async def second(msg: Message, c: Context) -> str:
        calls.append("second")
        return "b"

    assert await router.dispatch(text_msg("我要退货"), ctx()) == "a"
    assert await router.dispatch(text_msg("退款"), ctx()) == "b"
    assert await router.dispatch(text_msg("你好呀"), ctx()) is UNHANDLED
    assert calls == ["first", "second"]


async def test_filters_compose_and_enrich_context() -> None:
    router = Router("t")
    seen: dict[str, object] = {}

    @router.text(Keyword("价格", "多少钱") & ~Regex(r"不要"))
    async def price(msg: Message, c: Context) -> str:
        seen.update(c.data)
        return "price"

    c = ctx()
    assert await router.dispatch(text_msg("这个多少钱"), c) == "price"
    assert seen["keyword"] == "多少钱"
    assert await router.dispatch(text_msg("不要告诉我多少钱"), ctx()) is UNHANDLED


async def test_or_filter_and_func() -> None:
    router = Router("t")
    vip = Func(lambda m, c: m.from_user == "boss")

    @router.message(vip | MsgType("image"))
    async def special(msg: Message, c: Context) -> str:
        return "special"

    assert await router.dispatch(text_msg("x"), ctx()) is UNHANDLED
    boss = parse(
        "<xml><ToUserName>c</ToUserName><FromUserName>boss</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>text</MsgType><Content>x</Content><MsgId>2</MsgId></xml>"
    )
    assert await router.dispatch(boss, ctx()) == "special"


async def test_events_by_name_case_insensitive() -> None:
    router = Router("t")

    @router.event("enter_agent", "location")
    async def on_event(msg: Message, c: Context) -> str:
        return "event"

    assert await router.dispatch(event_msg("enter_agent"), ctx()) == "event"
    assert await router.dispatch(event_msg("LOCATION"), ctx()) == "event"
    assert await router.dispatch(event_msg("subscribe"), ctx()) is UNHANDLED
    assert await EventIs("subscribe")(text_msg("subscribe"), ctx()) is False


async def test_included_routers_searched_in_order() -> None:
    root, a, b = Router("root"), Router("a"), Router("b")

    @a.text(Keyword("x"))
    async def ha(msg: Message, c: Context) -> str:
        return "a"

    @b.text(Keyword("x"))
    async def hb(msg: Message, c: Context) -> str:
        return "b"

    @root.text(Keyword("root"))
    async def hroot(msg: Message, c: Context) -> str:
        return "root"

    root.include(a)
    root.include(b)
    assert await root.dispatch(text_msg("x"), ctx()) == "a"
    assert await root.dispatch(text_msg("root x"), ctx()) == "root"


def test_include_cycle_refused() -> None:
    a, b = Router("a"), Router("b")
    a.include(b)
    try:
        b.include(a)
    except ValueError as exc:
        assert "cycle" in str(exc)
    else:
        raise AssertionError("cycle accepted")


async def test_shipped_handlers_answer_with_the_chosen_reply_rule() -> None:
    engine = RuleEngine([SAMPLE_RULES])
    root = build_root_router()

    async def answer(text: str) -> object:
        c = ctx()
        c.inspection = engine.inspect(text, Audience.ANY)
        return await root.dispatch(text_msg(text), c)

    assert await answer("请帮我转人工") == TextReply(content=sample_reply("转人工"))
    assert await answer("你好") == TextReply(content=sample_reply("问候"))
    assert await answer("Hello!") == TextReply(content=sample_reply("问候"))
    # greetings only as the whole message: a question that starts with 你好 is not a greeting
    assert await answer("你好，我的发票开好了吗") is UNHANDLED
    menu = await answer("我想退货")
    assert isinstance(menu, TextReply) and "1. 申请退货退款" in menu.content
    link = await answer("这个多少钱")
    assert isinstance(link, NewsReply) and link.articles[0].url.startswith("https://")
    assert await root.dispatch(event_msg("subscribe"), ctx()) is UNHANDLED
