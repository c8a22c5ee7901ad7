"""Manager alerts end to end: callback -> rules -> alert + outbox in the message's transaction ->
outbox worker -> the fake WeCom API (which checks tokens and fields like WeCom); card clicks come
back as ``template_card_event`` callbacks. Runs on SQLite + in-process state and on PostgreSQL +
Redis."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import Engine, func, select

from bot.config import Config, ConfigError
from bot.inbound.alert_stage import card_style
from bot.inbound.chat import feed
from bot.inbound.chat_message import ChatMessage
from bot.web.app import create_app
from bot.web.keys import CONFIG, PIPELINE, WRITER
from bot.web.preflight import config_notes
from monitor.alerts.models import AlertRecord, OutboxRecord
from monitor.alerts.policy import AlertKind
from monitor.archive import make_engine
from monitor.archive.audit import AuditEventRecord
from rules.models import Audience, Severity
from tests.support.app import (
    AES_KEY,
    AGENT_ID,
    CORP_ID,
    TOKEN,
    ServerProcess,
    free_port,
    make_config,
    sealed_post,
    text_xml,
    write_config,
)
from tests.support.callbacks import click_xml, post_inner, wait_calls
from tests.support.waiting import until, until_async
from wecom_sdk.crypto import MsgCrypto
from wecom_sdk.testing.fake_api import Call, FakeWeCom

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
ServerFactory = Callable[..., Awaitable[TestServer]]
PATH = "/wecom/callback"
SECRET = "app-secret-for-tests"
ALERTS = '[alerts]\nmanagers = ["mgr1", "mgr2"]\n'


@pytest.fixture
async def fake(aiohttp_server: ServerFactory) -> tuple[FakeWeCom, str]:
    wecom = FakeWeCom(corp_id=CORP_ID, secret=SECRET)
    server = await aiohttp_server(wecom.app)
    return wecom, str(server.make_url("/cgi-bin/"))


def _config(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    api_base: str,
    *,
    shared_state: bool,
    extra: str = ALERTS,
) -> Config:
    """SQLite + in-process state, or PostgreSQL + Redis (``shared_state``)."""
    shared = {}
    if shared_state:
        shared = {
            "redis_url": request.getfixturevalue("redis_url"),
            "redis_prefix": request.getfixturevalue("redis_prefix"),
        }
        url = request.getfixturevalue("pg_schema_url")
    else:
        url = request.getfixturevalue("sqlite_url")
    return make_config(tmp_path, url, secret=SECRET, api_base=api_base, extra=extra, **shared)


@pytest.fixture(params=["embedded", "shared"])
async def env(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    aiohttp_client: ClientFactory,
    fake: tuple[FakeWeCom, str],
) -> tuple[TestClient[Any, Any], FakeWeCom]:
    wecom, api_base = fake
    config = _config(request, tmp_path, api_base, shared_state=request.param == "shared")
    client = await aiohttp_client(create_app(config))
    return client, wecom


def crypto() -> MsgCrypto:
    return MsgCrypto(TOKEN, AES_KEY, CORP_ID)


def deliveries(fake: FakeWeCom, path: str) -> list[Call]:
    """Every accepted call to ``path``, repeats included: a card sent twice counts twice even
    when WeCom's duplicate check keeps the manager from seeing it twice."""
    return [c for c in fake.history if c.path == path and c.errcode == 0]


def pending_outbox_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(OutboxRecord)
                .where(OutboxRecord.status == "pending")  # type: ignore[arg-type]
            ).scalar_one()
        )


async def outbox_settled(engine: Engine, timeout_s: float = 10.0) -> None:
    """Wait until the outbox worker has nothing left to send (each row sent, failed or skipped)."""
    await until_async(
        lambda: asyncio.to_thread(lambda: pending_outbox_rows(engine) == 0),
        "the outbox to have no pending row",
        timeout_s,
    )


def card_of(call: Call) -> dict[str, Any]:
    card: dict[str, Any] = call.body["template_card"]
    return card


def rows(card: dict[str, Any]) -> dict[str, str]:
    return {r["keyname"]: r["value"] for r in card["horizontal_content_list"]}


async def alerts_in_db(client: TestClient[Any, Any]) -> list[AlertRecord]:
    engine = client.app[WRITER].engine

    def read() -> list[AlertRecord]:
        with engine.connect() as conn:
            return list(conn.execute(select(AlertRecord)).all())  # type: ignore[arg-type]

    return await asyncio.to_thread(read)


async def test_customer_risk_card_reaches_managers_within_2s(
    env: tuple[TestClient[Any, Any], FakeWeCom],
) -> None:
    client, fake = env
    started = time.monotonic()
    assert await post_inner(client, text_xml("你们再不退款我就去12315维权", 9001)) == 200
    (call,) = await wait_calls(fake, "message/send", 1, timeout_s=2.0)
    assert time.monotonic() - started < 2.0
    body = call.body
    assert body["touser"] == "mgr1|mgr2"
    assert body["agentid"] == int(AGENT_ID)
    assert body["enable_duplicate_check"] == 1
    card = card_of(call)
    assert card["card_type"] == "button_interaction"
    assert card["main_title"]["title"] == "客户维权风险"
    assert "【维权】" in card["sub_title_text"] and "【12315】" in card["sub_title_text"]
    assert rows(card)["客户"] == "zhangsan"
    assert {b["text"] for b in card["button_list"]} == {"认领", "已处理", "误报"}
    alert_id = card["button_list"][0]["key"].partition(":")[2]
    assert card["task_id"].startswith(alert_id)
    assert card["card_action"]["url"].endswith("/review/conversations/app%3Azhangsan")
    (alert,) = await alerts_in_db(client)
    assert alert.alert_id == alert_id and alert.status == "open"


async def test_two_system_busy_answers_still_deliver_once(
    env: tuple[TestClient[Any, Any], FakeWeCom],
) -> None:
    client, fake = env
    fake.fail_next("message/send", -1, times=2)
    assert await post_inner(client, text_xml("我要投诉你们", 9101)) == 200
    await wait_calls(fake, "message/send", 1, timeout_s=10.0)
    await outbox_settled(client.app[WRITER].engine)
    assert len(deliveries(fake, "message/send")) == 1
    busy = [c for c in fake.history if c.path == "message/send" and c.errcode == -1]
    assert len(busy) == 2


async def test_six_repeat_hits_in_one_chat_send_at_most_one_extra_message(
    env: tuple[TestClient[Any, Any], FakeWeCom],
) -> None:
    client, fake = env
    texts = ["不给退款我就差评", "退钱！", "还不退款？", "我要维权", "我去12315维权", "维权到底"]
    for n, text in enumerate(texts):
        assert await post_inner(client, text_xml(text, 9200 + n)) == 200
    await wait_calls(fake, "message/send", 1)
    await outbox_settled(client.app[WRITER].engine)
    sends = deliveries(fake, "message/send")
    # The first card (medium: refund) and one re-notification when severity rose to high.
    assert len(sends) == 2
    assert card_of(sends[1])["main_title"]["title"] == "客户维权风险"
    (alert,) = await alerts_in_db(client)
    assert alert.count == 6 and alert.severity == 3


async def test_staff_message_from_a_chat_channel_names_the_staff_member(
    env: tuple[TestClient[Any, Any], FakeWeCom],
) -> None:
    client, fake = env
    app = client.app
    outcome = await feed(
        app[PIPELINE],
        app[CONFIG],
        ChatMessage(
            channel="kf",
            dedupe_key="kf:staff-msg-1",
            conversation_id="kf:wkAAA:wmCustomer1",
            author=Audience.STAFF,
            from_user="wangwu",
            customer_id="wmCustomer1",
            staff_userid="wangwu",
            msg_type="text",
            text="亲，好评的话发个红包给我呗",
            raw='{"msgid": "staff-msg-1"}',
            create_time=int(time.time()),
            to_user="wkAAA",
        ),
    )
    assert outcome.stored and outcome.inspection is not None
    (call,) = await wait_calls(fake, "message/send", 1)
    card = card_of(call)
    assert card["main_title"]["title"] == "员工违规风险"
    assert rows(card)["员工"] == "wangwu"
    assert rows(card)["客户"] == "wmCustomer1"
    assert "【红包】" in card["sub_title_text"]
    assert card["sub_title_text"].startswith("员工：")


async def test_button_click_updates_the_card_for_every_recipient(
    env: tuple[TestClient[Any, Any], FakeWeCom],
) -> None:
    client, fake = env
    assert await post_inner(client, text_xml("我要维权", 9301)) == 200
    (sent,) = await wait_calls(fake, "message/send", 1)
    card = card_of(sent)
    claim = next(b["key"] for b in card["button_list"] if b["text"] == "认领")
    assert await post_inner(client, click_xml("mgr2", claim, card["task_id"], "rc-click-1")) == 200
    (update,) = await wait_calls(fake, "message/update_template_card", 1)
    assert update.body["response_code"] == "rc-click-1"
    assert sorted(update.body["userids"]) == ["mgr1", "mgr2"]
    assert update.body["button"] == {"replace_name": "已由 mgr2 认领"}

    resolve = next(b["key"] for b in card["button_list"] if b["text"] == "已处理")
    assert await post_inner(client, click_xml("mgr1", resolve, card["task_id"], "rc-2")) == 200
    updates = await wait_calls(fake, "message/update_template_card", 2)
    assert updates[1].body["button"] == {"replace_name": "已由 mgr1 处理"}
    (alert,) = await alerts_in_db(client)
    assert (alert.status, alert.claimed_by, alert.closed_by) == ("resolved", "mgr2", "mgr1")

    engine = client.app[WRITER].engine

    def audit() -> list[Any]:
        with engine.connect() as conn:
            return list(conn.execute(select(AuditEventRecord).order_by(AuditEventRecord.id)))  # type: ignore[arg-type]

    trail = await asyncio.to_thread(audit)
    assert [
        (a.actor, a.action, json.loads(a.detail)["before"], json.loads(a.detail)["after"])
        for a in trail
    ] == [
        ("mgr2", "claim", "open", "claimed"),
        ("mgr1", "resolve", "claimed", "resolved"),
    ]
    # A late click on the closed alert changes nothing but refreshes the clicker's card.
    assert await post_inner(client, click_xml("mgr2", claim, card["task_id"], "rc-3")) == 200
    updates = await wait_calls(fake, "message/update_template_card", 3)
    assert updates[2].body["userids"] == ["mgr2"]
    assert updates[2].body["button"] == {"replace_name": "已由 mgr1 处理"}
    assert len(await asyncio.to_thread(audit)) == 2


async def test_a_repeated_click_callback_is_applied_once(
    env: tuple[TestClient[Any, Any], FakeWeCom],
) -> None:
    client, fake = env
    assert await post_inner(client, text_xml("我要维权", 9401)) == 200
    (sent,) = await wait_calls(fake, "message/send", 1)
    card = card_of(sent)
    click = click_xml("mgr1", card["button_list"][0]["key"], card["task_id"], "rc-once")
    for _ in range(3):  # WeCom retries a callback it got no answer to
        assert await post_inner(client, click) == 200
    await wait_calls(fake, "message/update_template_card", 1)
    await outbox_settled(client.app[WRITER].engine)
    assert len(deliveries(fake, "message/update_template_card")) == 1


async def test_token_revoked_mid_run_is_refreshed_once(
    env: tuple[TestClient[Any, Any], FakeWeCom],
) -> None:
    client, fake = env
    assert await post_inner(client, text_xml("我要维权", 9501, from_user="c1")) == 200
    await wait_calls(fake, "message/send", 1)
    assert fake.token_fetches == 1
    fake.revoke_token()
    assert await post_inner(client, text_xml("我要投诉", 9502, from_user="c2")) == 200
    await wait_calls(fake, "message/send", 2)
    assert fake.token_fetches == 2


async def test_three_workers_sharing_redis_fetch_the_token_once(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    aiohttp_client: ClientFactory,
    fake: tuple[FakeWeCom, str],
) -> None:
    wecom, api_base = fake
    wecom.delay("gettoken", 0.3)  # all three ask while the first fetch is in flight
    config = _config(request, tmp_path, api_base, shared_state=True)
    clients = [await aiohttp_client(create_app(config)) for _ in range(3)]
    statuses = await asyncio.gather(
        *(
            post_inner(c, text_xml("我要维权", 9600 + n, from_user=f"cust{n}"))
            for n, c in enumerate(clients)
        )
    )
    assert statuses == [200, 200, 200]
    await wait_calls(wecom, "message/send", 3)
    assert wecom.token_fetches == 1
    assert len({c.token for c in wecom.calls_to("message/send")}) == 1


async def test_kill9_while_api_down_then_restart_delivers_the_pending_alert(
    tmp_path: Path, sqlite_url: str
) -> None:
    api_port, port = free_port(), free_port()
    config_path = write_config(
        tmp_path,
        sqlite_url,
        port=port,
        secret=SECRET,
        api_base=f"http://127.0.0.1:{api_port}/cgi-bin/",  # nothing listens there yet
        extra=ALERTS,
    )
    first = ServerProcess(config_path, port)
    try:
        await asyncio.to_thread(first.wait_ready)
        async with aiohttp.ClientSession() as http:
            body, query = sealed_post(crypto(), text_xml("我要去12315维权", 9901))
            async with http.post(f"{first.base}{PATH}", params=query, data=body) as resp:
                assert resp.status == 200  # stored (with its alert) before the answer
        # The outbox tries and fails to reach the API.
        await until(lambda: "outbox row" in first.output(), "a failed delivery in the log")
        first.signal(signal.SIGKILL)
        await asyncio.to_thread(first.wait)
    finally:
        first.close()

    fake = FakeWeCom(corp_id=CORP_ID, secret=SECRET)
    runner = web.AppRunner(fake.app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", api_port).start()
    second = ServerProcess(config_path, port)
    try:
        await asyncio.to_thread(second.wait_ready)
        (call,) = await wait_calls(fake, "message/send", 1, timeout_s=30.0)
        assert call.body["template_card"]["main_title"]["title"] == "客户维权风险"
        engine = make_engine(sqlite_url)
        try:
            await outbox_settled(engine, timeout_s=30.0)
        finally:
            engine.dispose()
        assert len(deliveries(fake, "message/send")) == 1
    finally:
        second.close()
        await runner.cleanup()


async def test_card_masks_phone_and_id_numbers_and_metrics_count_the_alert(
    env: tuple[TestClient[Any, Any], FakeWeCom],
) -> None:
    client, fake = env
    text = "我要维权！电话13812345678，身份证110105199001011232"  # a valid check digit
    assert await post_inner(client, text_xml(text, 9701)) == 200
    (call,) = await wait_calls(fake, "message/send", 1)
    sub = card_of(call)["sub_title_text"]
    assert "13812345678" not in sub and "110105199001011232" not in sub
    assert "138****5678" in sub and "110*************32" in sub
    deadline = time.monotonic() + 5
    while True:  # the worker reports after writing the outcome
        metrics = await (await client.get("/metrics")).text()
        done = 'sentinel_alerts_sent_total{kind="card"} 1.0' in metrics
        if (done and "sentinel_alerts_pending 0.0" in metrics) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert 'sentinel_alerts_created_total{action="new"} 1.0' in metrics
    assert 'sentinel_alerts_sent_total{kind="card"} 1.0' in metrics
    assert "sentinel_alert_delivery_seconds_bucket" in metrics
    assert "sentinel_alerts_pending 0.0" in metrics


async def test_without_a_secret_the_card_and_its_state_show_on_the_sandbox_page(
    tmp_path: Path, sqlite_url: str, aiohttp_client: ClientFactory
) -> None:
    config = make_config(tmp_path, sqlite_url, extra=ALERTS + "[sandbox]\nenabled = true\n")
    client = await aiohttp_client(create_app(config))
    assert await post_inner(client, text_xml("我要维权<script>x</script>", 9801)) == 200
    deadline = time.monotonic() + 5
    while not (calls := await (await client.get("/sandbox/calls.json")).json()):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    page = await (await client.get("/sandbox/")).text()
    assert "客户维权风险" in page and "待处理" in page and "app:zhangsan" in page
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    card = calls[0]["body"]["template_card"]
    claim = next(b["key"] for b in card["button_list"] if b["text"] == "认领")
    assert await post_inner(client, click_xml("mgr1", claim, card["task_id"], "rc-sb")) == 200
    while len(await (await client.get("/sandbox/calls.json")).json()) < 2:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    page = await (await client.get("/sandbox/")).text()
    assert "mgr1 认领" in page and "已认领" in page and "卡片按钮更新为：已由 mgr1 认领" in page


def test_configured_titles_replace_the_defaults(tmp_path: Path, sqlite_url: str) -> None:
    titles = '["客户一般", "客户较急", "客户很急", "客户特急"]'
    config = make_config(tmp_path, sqlite_url, extra=f"[alerts]\ncustomer_titles = {titles}\n")
    wording = card_style(config).wording
    assert wording.title(AlertKind.CUSTOMER_RISK, Severity.HIGH) == "客户很急"
    assert wording.title(AlertKind.STAFF_MISCONDUCT, Severity.HIGH) == "员工违规风险"
    with pytest.raises(ConfigError, match=r"\[alerts\]\.staff_titles"):
        make_config(tmp_path, sqlite_url, extra='[alerts]\nstaff_titles = ["a", "b"]\n')


def test_check_notes_sandbox_unrouted_groups_and_missing_agent_id(
    tmp_path: Path, sqlite_url: str
) -> None:
    notes = config_notes(make_config(tmp_path, sqlite_url))
    assert any("sandbox" in n for n in notes)
    assert any("[alerts].managers is empty" in n and "客户维权风险" in n for n in notes)
    routed = make_config(tmp_path, sqlite_url, secret="s", extra=ALERTS)
    assert not any("managers" in n or "sandbox" in n for n in config_notes(routed))
    no_agent = replace(routed, wecom=replace(routed.wecom, agent_id=""))
    with pytest.raises(ConfigError, match=r"\[wecom\]\.agent_id"):
        config_notes(no_agent)
