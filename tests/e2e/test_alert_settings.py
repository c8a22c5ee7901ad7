"""Each ``[alerts]`` setting, changed in the config file, changes what the running bot does.

The app is built from the file (``make_config`` writes and loads it), messages go in through the
callback, and the effect is read where it shows: WeCom's side (the emulator's full call history)
and the alert and outbox tables. A setting the bot ignored would leave its test at the default
behaviour, which each test also runs for contrast.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import Engine, select

from bot.inbound.chat import feed
from bot.inbound.chat_message import ChatMessage
from bot.web.app import create_app
from bot.web.keys import CONFIG, PIPELINE, WRITER
from monitor.alerts.models import AlertRecord, OutboxRecord
from rules.models import Audience
from tests.e2e.test_alerts_e2e import card_of, deliveries, outbox_settled, post_inner
from tests.support.app import CORP_ID, make_config, text_xml
from tests.support.waiting import until, until_async
from wecom_sdk.testing.fake_api import FakeWeCom

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
ServerFactory = Callable[..., Awaitable[TestServer]]
SECRET = "app-secret-for-tests"


@pytest.fixture
async def bot(
    aiohttp_server: ServerFactory, aiohttp_client: ClientFactory, tmp_path: Path, sqlite_url: str
) -> Callable[[str], Awaitable[tuple[TestClient[Any, Any], FakeWeCom]]]:
    """Start the bot with these ``[alerts]`` lines (managers = mgr1 unless they name others),
    against a fresh emulator."""

    async def start(alerts: str) -> tuple[TestClient[Any, Any], FakeWeCom]:
        fake = FakeWeCom(corp_id=CORP_ID, secret=SECRET)
        server = await aiohttp_server(fake.app)
        api_base = str(server.make_url("/cgi-bin/"))
        managers = "" if "managers" in alerts else 'managers = ["mgr1"]\n'
        extra = "[alerts]\n" + managers + alerts.replace("{api}", api_base)
        config = make_config(tmp_path, sqlite_url, secret=SECRET, api_base=api_base, extra=extra)
        return await aiohttp_client(create_app(config)), fake

    return start


def _rows(engine: Engine, table: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(table)).all())


async def alerts(client: TestClient[Any, Any]) -> list[Any]:
    return await asyncio.to_thread(_rows, client.app[WRITER].engine, AlertRecord)


async def outbox(client: TestClient[Any, Any]) -> list[Any]:
    return await asyncio.to_thread(_rows, client.app[WRITER].engine, OutboxRecord)


@pytest.mark.parametrize(("setting", "alerts_opened"), [("", 1), ("aggregate_window_s = 0\n", 2)])
async def test_aggregate_window_s(bot: Any, setting: str, alerts_opened: int) -> None:
    """Two hits in one chat join one alert inside the window; with a window of 0 they do not."""
    client, fake = await bot(setting)
    assert await post_inner(client, text_xml("我要维权", 9001)) == 200
    assert await post_inner(client, text_xml("我去12315维权", 9002)) == 200
    await outbox_settled(client.app[WRITER].engine)
    assert len(await alerts(client)) == alerts_opened
    assert len(deliveries(fake, "message/send")) == alerts_opened


async def test_escalate_after_s_and_escalate_to(bot: Any) -> None:
    """An alert nobody claims goes to ``escalate_to`` once ``escalate_after_s`` has passed."""
    client, fake = await bot('escalate_after_s = 1\nescalate_to = ["boss"]\n')
    assert await post_inner(client, text_xml("我要维权", 9101)) == 200

    def escalated() -> bool:
        return any(c.body.get("touser") == "boss" for c in deliveries(fake, "message/send"))

    await until(escalated, "an escalation card to boss", timeout_s=20.0)
    (alert,) = await alerts(client)
    assert alert.escalated
    first, escalation = deliveries(fake, "message/send")
    assert first.body["touser"] == "mgr1"
    assert "boss" in escalation.body["touser"]


@pytest.mark.parametrize(
    ("setting", "cards"),
    [("", 2), ("max_per_minute = 1\n", 1), ("max_per_hour = 1\n", 1)],
)
async def test_rate_limits(bot: Any, setting: str, cards: int) -> None:
    """Over a manager's per-minute or per-hour budget, a card is held for a digest instead."""
    client, fake = await bot(setting)
    assert await post_inner(client, text_xml("我要维权", 9201, from_user="c1")) == 200
    assert await post_inner(client, text_xml("我要维权", 9202, from_user="c2")) == 200

    async def both_handled() -> bool:
        rows = [r for r in await outbox(client) if r.kind == "card"]
        return len(rows) == 2 and all(r.status != "pending" for r in rows)

    await until_async(both_handled, "both cards sent or held")
    assert len(deliveries(fake, "message/send")) == cards
    digests = [r for r in await outbox(client) if r.kind == "digest"]
    assert len(digests) == 2 - cards  # the held card waits for mgr1's next free slot


async def test_customer_and_staff_titles(bot: Any) -> None:
    client, fake = await bot(
        'customer_titles = ["客户一般", "客户较急", "客户很急", "客户特急"]\n'
        'staff_titles = ["员工一般", "员工较急", "员工很急", "员工特急"]\n'
    )
    assert await post_inner(client, text_xml("我要维权", 9301)) == 200
    app = client.app
    outcome = await feed(
        app[PIPELINE],
        app[CONFIG],
        ChatMessage(
            channel="kf",
            dedupe_key="kf:titles-1",
            conversation_id="kf:wkAAA:wmCustomer1",
            author=Audience.STAFF,
            from_user="wangwu",
            customer_id="wmCustomer1",
            staff_userid="wangwu",
            msg_type="text",
            text="亲，好评的话发个红包给我呗",
            raw='{"msgid": "titles-1"}',
            create_time=1_700_000_000,
            to_user="wkAAA",
        ),
    )
    assert outcome.stored
    await until(lambda: len(deliveries(fake, "message/send")) == 2, "two cards")
    titles = {card_of(c)["main_title"]["title"] for c in deliveries(fake, "message/send")}
    assert titles == {"客户很急", "员工很急"}  # both high severity, each its own kind's title


async def test_robot_webhook(bot: Any) -> None:
    client, fake = await bot('robot_webhook = "{api}webhook/send?key=robot-key-1"\n')
    assert await post_inner(client, text_xml("我要维权", 9401)) == 200
    await until(lambda: deliveries(fake, "webhook/send"), "a post to the team-room robot")
    (post,) = deliveries(fake, "webhook/send")
    assert post.token == "robot-key-1"
    assert "维权" in post.body["markdown"]["content"]


async def test_managers(bot: Any) -> None:
    client, fake = await bot('managers = ["lead1", "lead2"]\n')
    assert await post_inner(client, text_xml("我要维权", 9501)) == 200
    await until(lambda: deliveries(fake, "message/send"), "a card")
    assert deliveries(fake, "message/send")[0].body["touser"] == "lead1|lead2"
