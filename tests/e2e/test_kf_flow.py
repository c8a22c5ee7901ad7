"""微信客服 end to end in one process: a sealed kf_msg_or_event callback -> the puller ->
sync_msg on the fake WeCom (kf rules on) -> pipeline + archive -> decisions -> send_msg /
service_state/trans / send_msg_on_event on the fake. Runs on SQLite + in-process locks and on
PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from bot.web.app import create_app
from bot.web.keys import CONFIG, KF_PULLER, WRITER
from monitor.archive.verify import verify_database
from tests.support.app import (
    AES_KEY,
    CORP_ID,
    TOKEN,
    make_config,
    sample_reply,
    sealed_post,
    text_xml,
)
from tests.support.waiting import until, until_async
from wecom_sdk.crypto import MsgCrypto
from wecom_sdk.testing.fake_api import KF_OVER_LIMIT, FakeWeCom, kf_event, kf_text
from wecom_sdk.xmlsafe import render_xml

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
ServerFactory = Callable[..., Awaitable[TestServer]]
SECRET = "kf-app-secret"
KF = "wkSENTINEL"
PATH = "/wecom/callback"

FAQ_RULES = "\n".join(
    f'[[reply]]\nname = "问题{n}"\nkeywords = ["问题{n}"]\npriority = 50\nreply = "答案{n}"\n'
    for n in range(1, 8)
)


def kf_callback(token: str, open_kfid: str = KF) -> bytes:
    """The inner XML of a kf_msg_or_event callback (doc 94670)."""
    return render_xml(
        {
            "ToUserName": CORP_ID,
            "CreateTime": int(time.time()),
            "MsgType": "event",
            "Event": "kf_msg_or_event",
            "Token": token,
            "OpenKfId": open_kfid,
        }
    )


class HeldPage:
    """Holds the answer of the next sync_msg (its page already read from the queue)."""

    def __init__(self, fake: FakeWeCom) -> None:
        self.fake = fake
        self.reached, self.release = asyncio.Event(), asyncio.Event()
        fake.on_call("kf/sync_msg", self._hold)

    async def _hold(self, _body: dict[str, Any]) -> None:
        self.fake.on_call("kf/sync_msg", None)  # only this one call
        self.reached.set()
        await self.release.wait()

    async def wait(self) -> None:
        await asyncio.wait_for(self.reached.wait(), 5)


@dataclass
class Env:
    client: TestClient[Any, Any]
    fake: FakeWeCom

    async def post(self, inner: bytes) -> tuple[int, bytes]:
        body, query = sealed_post(MsgCrypto(TOKEN, AES_KEY, CORP_ID), inner)
        resp = await self.client.post(PATH, params=query, data=body)
        return resp.status, await resp.read()

    async def event(self, token: str | None = None) -> None:
        """WeCom's callback with a fresh pull token; answered at once, with an empty body."""
        status, body = await self.post(kf_callback(token or self.fake.issue_kf_token(KF)))
        assert (status, body) == (200, b"")

    async def settled(self) -> None:
        await self.client.app[KF_PULLER].idle()

    def sql(self, query: str, **params: Any) -> list[Any]:
        with self.client.app[WRITER].engine.connect() as conn:
            return list(conn.execute(text(query), params))

    def chat(self, user: str) -> list[tuple[str, str, str | None]]:
        """(dedupe_key, direction, content) of a customer's conversation, in archive order."""
        return [
            (row[0], row[1], row[2])
            for row in self.sql(
                "SELECT dedupe_key, direction, content FROM message "
                "WHERE conversation_id = :c ORDER BY id",
                c=f"kf:{KF}:{user}",
            )
        ]


@pytest.fixture
async def fake(aiohttp_server: ServerFactory) -> tuple[FakeWeCom, str]:
    wecom = FakeWeCom(corp_id=CORP_ID, secret=SECRET, kf_strict=True)
    server = await aiohttp_server(wecom.app)
    return wecom, str(server.make_url("/cgi-bin/"))


async def start(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    aiohttp_client: ClientFactory,
    fake: tuple[FakeWeCom, str],
    *,
    shared: bool,
    extra: str = "",
) -> Env:
    wecom, api_base = fake
    if shared:
        url = request.getfixturevalue("pg_schema_url")
        state = {
            "redis_url": request.getfixturevalue("redis_url"),
            "redis_prefix": request.getfixturevalue("redis_prefix"),
        }
    else:
        url, state = request.getfixturevalue("sqlite_url"), {}
    config = make_config(tmp_path, url, secret=SECRET, api_base=api_base, extra=extra, **state)
    return Env(await aiohttp_client(create_app(config)), wecom)


@pytest.fixture(params=["embedded", "shared"])
async def env(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    aiohttp_client: ClientFactory,
    fake: tuple[FakeWeCom, str],
) -> Env:
    return await start(request, tmp_path, aiohttp_client, fake, shared=request.param == "shared")


@pytest.fixture(params=["embedded", "shared"])
async def faq_env(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    aiohttp_client: ClientFactory,
    fake: tuple[FakeWeCom, str],
) -> Env:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "faq.toml").write_text(FAQ_RULES, encoding="utf-8")
    extra = f'[rules]\npaths = ["{rules}"]\n'
    return await start(
        request, tmp_path, aiohttp_client, fake, shared=request.param == "shared", extra=extra
    )


async def test_human_request_gets_the_reply_and_a_transfer(env: Env) -> None:
    env.fake.add_kf_messages(KF, [kf_text("c1-1", "wmA", "我要人工", open_kfid=KF)])
    await env.event()
    await env.settled()
    (delivered,) = env.fake.kf_delivered_to("wmA")
    assert delivered.text == sample_reply("转人工") and delivered.via == "send_msg"
    assert env.fake.kf_state(KF, "wmA") == 2  # in the waiting pool
    (trans,) = env.fake.calls_to("kf/service_state/trans")
    assert trans.body == {"open_kfid": KF, "external_userid": "wmA", "service_state": 2}
    chat = env.chat("wmA")
    assert [(key.split(":")[0], direction) for key, direction, _ in chat] == [
        ("kf", "customer"),
        ("kfbot", "bot"),  # the bot's reply, in the conversation, marked as bot
        ("kfbot", "bot"),  # the transfer, shown as the bot's event
    ]
    assert chat[1][2] == sample_reply("转人工")
    # Now with a human: the bot answers nothing more, and does not even try.
    env.fake.add_kf_messages(KF, [kf_text("c1-2", "wmA", "发货了吗", open_kfid=KF)])
    await env.event()
    await env.settled()
    assert len(env.fake.kf_delivered_to("wmA")) == 1 and env.fake.kf_refused == []
    outcomes = env.sql("SELECT outcome FROM kf_decision ORDER BY decided_at, dedupe_key")
    assert [row[0] for row in outcomes] == ["handoff:rule", "with_human"]
    metrics = await (await env.client.get("/metrics")).text()
    assert 'sentinel_kf_items_total{author="customer"} 2.0' in metrics
    assert 'sentinel_kf_actions_total{kind="handoff",outcome="sent"} 1.0' in metrics
    assert 'sentinel_kf_actions_total{kind="transfer",outcome="sent"} 1.0' in metrics
    assert "sentinel_kf_pages_total 2.0" in metrics


async def test_transfer_to_a_configured_servicer(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    aiohttp_client: ClientFactory,
    fake: tuple[FakeWeCom, str],
) -> None:
    extra = '[kf]\nhandoff_servicer = "zhangsan"\n'
    env = await start(request, tmp_path, aiohttp_client, fake, shared=False, extra=extra)
    env.fake.add_kf_messages(KF, [kf_text("c2-1", "wmB", "人工客服", open_kfid=KF)])
    await env.event()
    await env.settled()
    assert env.fake._states[KF, "wmB"] == (3, "zhangsan")


async def test_repeated_events_never_answer_twice(env: Env) -> None:
    item = kf_text("c3-1", "wmC", "什么时候发货", open_kfid=KF)
    env.fake.add_kf_messages(KF, [item, item])  # even twice in one page
    token = env.fake.issue_kf_token(KF)
    inner = kf_callback(token)
    # WeCom's retries of one callback, and several callbacks at once, while the pull runs.
    await asyncio.gather(*(env.post(inner) for _ in range(3)), *(env.event() for _ in range(3)))
    await env.settled()
    await env.event()
    await env.settled()
    # WeCom re-sends the same message in a later page (cursor lost or duplicate): still one.
    env.fake.add_kf_messages(KF, [kf_text("c3-1", "wmC", "什么时候发货", open_kfid=KF)])
    await env.event()
    await env.settled()
    (delivered,) = env.fake.kf_delivered_to("wmC")
    assert delivered.text == sample_reply("发货物流")
    assert env.fake.kf_duplicates == 0 and len(env.fake.calls_to("kf/send_msg")) == 1
    assert env.sql("SELECT count(*) FROM message WHERE dedupe_key = 'kf:c3-1'")[0][0] == 1


async def test_staff_and_system_messages_get_no_bot_reply(env: Env) -> None:
    items = [
        # A servicer writing words that would match reply rules and the staff-misconduct group.
        kf_text(
            "c4-1", "wmD", "发货了，好评返现，发个红包给我", open_kfid=KF, origin=5, servicer="ww1"
        ),
        kf_event("c4-2", "servicer_status_change", open_kfid=KF, servicer_userid="ww1", status=1),
        kf_event("c4-3", "session_status_change", open_kfid=KF, user="wmD", change_type=1),
        {"msgid": "c4-4", "origin": 4, "msgtype": "channels", "channels": {"nickname": "x"}},
    ]
    env.fake.add_kf_messages(KF, items)
    await env.event()
    await env.settled()
    assert env.fake.kf_deliveries == [] and env.fake.calls_to("kf/send_msg") == []
    assert env.sql("SELECT count(*) FROM kf_decision")[0][0] == 0
    rows = {
        r[0]: (r[1], r[2])
        for r in env.sql("SELECT dedupe_key, direction, from_user FROM message WHERE channel='kf'")
    }
    assert rows["kf:c4-1"] == ("staff", "ww1")
    assert rows["kf:c4-2"][0] == rows["kf:c4-3"][0] == rows["kf:c4-4"][0] == "system"
    hits = env.sql(
        "SELECT hit.rule_group FROM hit JOIN message ON hit.message_id = message.id "
        "WHERE message.dedupe_key = 'kf:c4-1'"
    )
    assert {h[0] for h in hits} == {"员工索要财物"}  # staff rules applied to the servicer
    raw = env.sql("SELECT raw FROM message WHERE dedupe_key = 'kf:c4-4'")[0][0]
    assert json.loads(raw)["channels"] == {"nickname": "x"}  # unknown type archived raw


async def test_welcome_on_enter_session(env: Env) -> None:
    code = env.fake.issue_welcome_code(KF, "wmE")
    stale = env.fake.issue_welcome_code(KF, "wmF")
    env.fake.add_kf_messages(
        KF,
        [
            kf_event("c5-1", "enter_session", open_kfid=KF, user="wmE", welcome_code=code),
            # Pulled too late for its 20 s code: no attempt at all.
            kf_event(
                "c5-2",
                "enter_session",
                open_kfid=KF,
                user="wmF",
                welcome_code=stale,
                send_time=int(time.time()) - 60,
            ),
        ],
    )
    await env.event()
    await env.settled()
    (welcome,) = env.fake.kf_deliveries
    assert (welcome.touser, welcome.via, welcome.msgtype) == ("wmE", "send_msg_on_event", "msgmenu")
    assert welcome.content["head_content"].startswith("您好，欢迎咨询")
    assert [i["click"]["content"] for i in welcome.content["list"]] == [
        "查询物流",
        "退换货",
        "人工客服",
    ]
    assert env.fake.calls_to("kf/send_msg_on_event")[0].body["code"] == code
    assert [d for _, d, _ in env.chat("wmE")] == ["system", "bot"]
    # The welcome is not a kf/send_msg message: the customer's first question is still answered.
    env.fake.add_kf_messages(KF, [kf_text("c5-3", "wmE", "查询物流", open_kfid=KF, menu_id="w1")])
    await env.event()
    await env.settled()
    assert [d.text for d in env.fake.kf_delivered_to("wmE")][1] == sample_reply("发货物流")


async def test_1500_queued_messages_are_pulled_in_pages_and_all_archived(env: Env) -> None:
    items = [
        kf_text(f"bulk-{n}", f"wm{n % 150}", f"第{n}条：订单{n}的情况", open_kfid=KF)
        for n in range(1500)
    ]
    env.fake.add_kf_messages(KF, items)
    await env.event()
    await env.settled()
    pulls = env.fake.calls_to("kf/sync_msg")
    assert [c.body.get("cursor") for c in pulls] == [None, "1000"]
    assert all(c.body["limit"] == 1000 and c.body["token"] for c in pulls)
    archived = {r[0] for r in env.sql("SELECT dedupe_key FROM message WHERE channel = 'kf'")}
    assert {f"kf:bulk-{n}" for n in range(1500)} <= archived
    assert env.sql("SELECT cursor FROM kf_cursor")[0][0] == "1500"
    assert env.sql("SELECT count(*) FROM kf_decision")[0][0] == 1500
    # 10 unanswerable messages each: the 3rd in a row hands every customer over, once.
    assert len(env.fake.calls_to("kf/service_state/trans")) == 150
    assert env.fake.kf_refused == []


async def test_the_sixth_message_in_a_48h_window_is_never_attempted(faq_env: Env) -> None:
    env = faq_env
    questions = [kf_text(f"c6-{n}", "wmG", f"问题{n}", open_kfid=KF) for n in range(1, 8)]
    env.fake.add_kf_messages(KF, questions)
    await env.event()
    await env.settled()
    delivered = [d.text for d in env.fake.kf_delivered_to("wmG")]
    # Four answers, then the 5th slot kept for the hand-off the unanswered questions brought.
    assert delivered == ["答案1", "答案2", "答案3", "答案4", "好的，正在为您转接人工客服，请稍候。"]
    assert env.fake.kf_refused == []  # WeCom never had to refuse a 6th (95001)
    assert len(env.fake.calls_to("kf/send_msg")) == 5
    assert env.fake.kf_state(KF, "wmG") == 2


async def test_one_customers_questions_across_pages_share_one_budget(faq_env: Env) -> None:
    # All seven were written before the bot answered any: WeCom counts every bot message after
    # the newest of them, so replies decided for an earlier page use up the same five slots.
    env = faq_env
    env.fake.kf_page_size = 3
    base = int(time.time()) - 600  # written over the last minutes, one per 10 s
    questions = [
        kf_text(f"c8-{n}", "wmP", f"问题{n}", open_kfid=KF, send_time=base + 10 * n)
        for n in range(1, 8)
    ]
    env.fake.add_kf_messages(KF, questions)
    await env.event()
    await env.settled()
    assert len(env.fake.calls_to("kf/sync_msg")) >= 3
    assert env.fake.kf_refused == []
    delivered = [d.text for d in env.fake.kf_delivered_to("wmP")]
    assert len(delivered) <= 5
    assert delivered[-1] == "好的，正在为您转接人工客服，请稍候。"  # slot 5 kept for the hand-off


async def test_a_full_budget_is_not_spent_again_across_pulls(faq_env: Env) -> None:
    env = faq_env
    env.fake.add_kf_messages(
        KF, [kf_text(f"c7-{n}", "wmH", f"问题{n}", open_kfid=KF) for n in (1, 2, 3)]
    )
    await env.event()
    await env.settled()
    # The fake's window still counts 3; a servicer's message or an event opens no new window.
    env.fake.add_kf_messages(KF, [kf_event("c7-e", "servicer_status_change", open_kfid=KF)])
    await env.event()
    await env.settled()
    assert (
        env.sql("SELECT count(*) FROM kf_reply WHERE external_userid = 'wmH' AND status = 'sent'")[
            0
        ][0]
        == 3
    )
    assert KF_OVER_LIMIT not in {code for _, code, _ in env.fake.kf_refused}


async def test_send_failure_and_recall_are_recorded(env: Env) -> None:
    env.fake.add_kf_messages(KF, [kf_text("c8-1", "wmI", "发货", open_kfid=KF)])
    await env.event()
    await env.settled()
    (reply,) = env.fake.kf_delivered_to("wmI")
    env.fake.add_kf_messages(
        KF,
        [
            kf_event(
                "c8-2",
                "msg_send_fail",
                open_kfid=KF,
                user="wmI",
                fail_msgid=reply.msgid,
                fail_type=10,
            ),
            kf_event("c8-3", "user_recall_msg", open_kfid=KF, user="wmI", recall_msgid="c8-1"),
        ],
    )
    await env.event()
    await env.settled()
    status = env.sql("SELECT status, fail_type FROM kf_reply WHERE msgid = :m", m=reply.msgid)
    assert [tuple(r) for r in status] == [("send_failed_event", 10)]
    flags = {
        (r[0], r[1], r[2]) for r in env.sql("SELECT dedupe_key, flag, detail FROM message_flag")
    }
    assert flags == {
        (f"kfbot:{reply.msgid}", "send_failed", "10"),
        ("kf:c8-1", "recalled", "user_recall_msg"),
    }
    # Recalled, not deleted: the original stays archived.
    assert env.sql("SELECT content FROM message WHERE dedupe_key = 'kf:c8-1'")[0][0] == "发货"
    # Both flags joined the archive's hash chain, beside the messages they mark.
    archive, audit = verify_database(env.client.app[WRITER].engine)
    assert (archive.problem, audit.problem) == (None, None)
    assert archive.rows["message_flag"] == 2
    assert archive.rows["message"] == env.sql("SELECT count(*) FROM message")[0][0]


async def test_events_during_a_pull_make_it_pull_once_more(env: Env) -> None:
    env.fake.add_kf_messages(KF, [kf_text("c9-1", "wmJ", "发货", open_kfid=KF)])
    held = HeldPage(env.fake)
    await env.event()
    await held.wait()  # the pull has read page 1 from WeCom, the answer is on its way
    env.fake.add_kf_messages(KF, [kf_text("c9-2", "wmK", "发货", open_kfid=KF)])
    await asyncio.gather(*(env.event() for _ in range(5)))
    held.release.set()
    await env.settled()
    assert env.fake.max_concurrent["kf/sync_msg"] == 1
    assert len(env.fake.calls_to("kf/sync_msg")) == 2  # the pull, and exactly one more
    assert [d.touser for d in env.fake.kf_deliveries] == ["wmJ", "wmK"]


async def test_a_refused_token_falls_back_to_a_tokenless_pull(env: Env) -> None:
    env.fake.add_kf_messages(KF, [kf_text("c10-1", "wmL", "发货", open_kfid=KF)])
    await env.event(token="kft-never-issued")
    await env.settled()
    assert len(env.fake.kf_delivered_to("wmL")) == 1
    assert "token" not in env.fake.calls_to("kf/sync_msg")[-1].body


async def test_transient_send_failure_is_retried_with_the_same_msgid(env: Env) -> None:
    env.fake.http_500("kf/send_msg", times=3)  # the client's 3 attempts all fail
    env.fake.add_kf_messages(KF, [kf_text("c11-1", "wmM", "发货", open_kfid=KF)])
    await env.event()
    await env.settled()
    assert env.fake.kf_deliveries == []
    (pending,) = env.sql("SELECT msgid, status, attempts FROM kf_reply")
    assert (pending[1], pending[2]) == ("pending", 1)
    await env.event()  # the next pull sends what is pending first
    await env.settled()
    (delivered,) = env.fake.kf_deliveries
    assert delivered.msgid == pending[0]
    assert env.sql("SELECT status FROM kf_reply")[0][0] == "sent"


async def test_periodic_pull_catches_a_missed_callback(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    aiohttp_client: ClientFactory,
    fake: tuple[FakeWeCom, str],
) -> None:
    env = await start(
        request, tmp_path, aiohttp_client, fake, shared=False, extra="[kf]\npull_interval_s = 0.2\n"
    )
    await env.event()  # the account becomes known
    await env.settled()
    env.fake.add_kf_messages(KF, [kf_text("c12-1", "wmN", "发货", open_kfid=KF)])  # no callback
    await until(lambda: env.fake.kf_deliveries, "the periodic pull to deliver the answer")
    assert [d.touser for d in env.fake.kf_deliveries] == ["wmN"]


async def test_app_messages_keep_their_passive_replies(env: Env) -> None:
    status, body = await env.post(text_xml("人工", 424242, from_user="member1"))
    assert status == 200 and body  # a sealed passive reply, as before
    assert env.fake.calls_to("kf/send_msg") == []


async def test_a_high_risk_message_is_handed_over(env: Env) -> None:
    env.fake.add_kf_messages(KF, [kf_text("c13-1", "wmO", "再不处理我就去12315投诉", open_kfid=KF)])
    await env.event()
    await env.settled()
    (delivered,) = env.fake.kf_delivered_to("wmO")
    assert delivered.text == "好的，正在为您转接人工客服，请稍候。"
    assert env.fake.kf_state(KF, "wmO") == 2
    assert env.sql("SELECT outcome FROM kf_decision")[0][0] == "handoff:risk"


async def test_kf_disabled_archives_the_callback_and_pulls_nothing(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    aiohttp_client: ClientFactory,
    fake: tuple[FakeWeCom, str],
) -> None:
    env = await start(
        request, tmp_path, aiohttp_client, fake, shared=False, extra="[kf]\nenabled = false\n"
    )
    env.fake.add_kf_messages(KF, [kf_text("c14-1", "wmP", "发货", open_kfid=KF)])
    await env.event()
    assert KF_PULLER not in env.client.app
    assert env.fake.calls_to("kf/sync_msg") == []
    assert env.sql("SELECT event FROM message")[0][0] == "kf_msg_or_event"


async def test_without_a_secret_the_sandbox_answers_empty_pages(
    tmp_path: Path, sqlite_url: str, aiohttp_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = await aiohttp_client(create_app(make_config(tmp_path, sqlite_url)))
    env = Env(client, FakeWeCom())
    await env.event(token="sandbox-token")
    await env.settled()
    assert env.sql("SELECT open_kfid, cursor FROM kf_cursor")[0][0] == KF
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]


@pytest.fixture
async def shared_env(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    aiohttp_client: ClientFactory,
    fake: tuple[FakeWeCom, str],
) -> Env:
    return await start(request, tmp_path, aiohttp_client, fake, shared=True)


async def test_an_event_at_another_worker_makes_the_holder_pull_again(
    shared_env: Env,
    aiohttp_client: ClientFactory,
    redis_client: aioredis.Redis,
    redis_prefix: str,
) -> None:
    first = shared_env
    # A second worker on the same PostgreSQL and Redis (same config, its own app and puller).
    second = Env(await aiohttp_client(create_app(first.client.app[CONFIG])), first.fake)
    first.fake.add_kf_messages(KF, [kf_text("c15-1", "wmQ", "发货", open_kfid=KF)])
    held = HeldPage(first.fake)
    await first.event()
    await held.wait()  # the first worker holds the lock, its page on the way
    first.fake.add_kf_messages(KF, [kf_text("c15-2", "wmR", "发货", open_kfid=KF)])
    await second.event()  # finds the lock taken: asks the holder to pull again
    await until_async(
        lambda: redis_client.exists(f"{redis_prefix}kf:again:{KF}"),
        "the second worker to ask the holder to pull again",
    )
    assert len(first.fake.calls_to("kf/sync_msg")) == 1  # only the held one: no second puller
    held.release.set()
    await first.settled()
    await second.settled()  # it saw its request taken, and stopped
    assert first.fake.max_concurrent["kf/sync_msg"] == 1
    assert len(first.fake.calls_to("kf/sync_msg")) == 2
    assert [d.touser for d in first.fake.kf_deliveries] == ["wmQ", "wmR"]


async def test_a_holder_killed_mid_pull_is_replaced_when_its_lease_lapses(
    shared_env: Env, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    env = shared_env
    # The lock of a worker killed mid-pull: nobody renews it, nobody will take requests.
    await redis_client.set(f"{redis_prefix}kf:lock:{KF}", "dead-worker", px=800)
    env.fake.add_kf_messages(KF, [kf_text("c16-1", "wmS", "发货", open_kfid=KF)])
    started = time.monotonic()
    await env.event()
    await env.settled()
    assert [d.touser for d in env.fake.kf_deliveries] == ["wmS"]
    assert time.monotonic() - started < 5
