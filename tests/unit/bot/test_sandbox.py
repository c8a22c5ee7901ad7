"""The send sandbox: SandboxTransport answers like WeCom, records to the database, /sandbox/ shows it.

Storage runs on both backends (SQLite file and the real PostgreSQL) through the shared fixtures.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import Engine, text
from yarl import URL

from bot.sandbox.pages import SANDBOX_TITLE, add_sandbox_routes
from bot.sandbox.transport import SANDBOX_TOKEN, SandboxTransport, api_path
from monitor.archive import GroupCommitWriter, SandboxCall, SandboxLog, create_schema, make_engine
from wecom_sdk.client import AiohttpTransport, WeComClient
from wecom_sdk.errors import ApiError, ServiceUnavailable, TransportError
from wecom_sdk.testing.fake_api import FakeWeCom

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]

CORP_ID = "wwsandboxcorp"
AGENT_ID = 1000002
NOW = 1_714_825_815.0
ROBOT_KEY = "robot-key-do-not-show"
BASE = URL("https://qyapi.weixin.qq.com/cgi-bin/")
HOSTILE = "<script>alert(1)</script>"

CARD: dict[str, Any] = {
    "card_type": "button_interaction",
    "source": {"desc": "风控哨兵"},
    "main_title": {"title": "客户维权风险", "desc": "高风险 · 客户提到「维权」"},
    "sub_title_text": "客户：我要【维权】\n第二行",
    "horizontal_content_list": [
        {"keyname": "客户", "value": "张*（wm001）"},
        {"keyname": "命中词", "value": "维权"},
    ],
    "card_action": {"type": 1, "url": "https://sentinel.example/review/a1"},
    "task_id": "alert-1-1",
    "button_list": [
        {"text": "认领", "style": 1, "key": "claim:a1"},
        {"text": "已处理", "style": 2, "key": "resolve:a1"},
    ],
}


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    create_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def log(writer: GroupCommitWriter) -> SandboxLog:
    return SandboxLog(writer)


@pytest.fixture
def sandbox(log: SandboxLog) -> SandboxTransport:
    return SandboxTransport(log, CORP_ID, AGENT_ID, clock=lambda: NOW)


def api(path: str, token: str | None = SANDBOX_TOKEN) -> URL:
    url = BASE.join(URL(path))
    return url.with_query(access_token=token) if token is not None else url


async def post(sandbox: SandboxTransport, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = await sandbox.exchange("POST", api(path), body)
    assert isinstance(answer, dict)
    return answer


def text_msg(**over: Any) -> dict[str, Any]:
    return {
        "touser": "u1|u2",
        "msgtype": "text",
        "agentid": AGENT_ID,
        "text": {"content": "hi"},
        **over,
    }


def card_msg(card: dict[str, Any] | None = None, **over: Any) -> dict[str, Any]:
    return {
        "touser": "boss",
        "msgtype": "template_card",
        "agentid": AGENT_ID,
        "template_card": card if card is not None else CARD,
        **over,
    }


# -- the transport answers like WeCom ---------------------------------------------------------


async def test_gettoken(sandbox: SandboxTransport) -> None:
    async def token(**query: str) -> Any:
        return await sandbox.exchange("GET", BASE.join(URL("gettoken")).with_query(query), None)

    good = await token(corpid=CORP_ID, corpsecret="")
    assert good == {
        "errcode": 0,
        "errmsg": "ok",
        "access_token": SANDBOX_TOKEN,
        "expires_in": 7200,
    }
    assert (await token(corpid="other", corpsecret="x"))["errcode"] == 40013
    assert (await token(corpsecret="x"))["errcode"] == 41002
    assert (await token(corpid=CORP_ID))["errcode"] == 41004


BAD_REQUESTS: list[tuple[str, dict[str, Any], int]] = [
    ("message/send", text_msg(touser=""), 81013),
    ("message/send", text_msg(agentid="1000002"), 40056),
    ("message/send", text_msg(agentid=True), 40056),
    ("message/send", text_msg(msgtype="bogus"), 40008),
    ("message/send", text_msg(text="not an object"), 40008),
    ("message/send", text_msg(text={"content": ""}), 44004),
    ("message/send", text_msg(text={"content": "字" * 683}), 45002),
    ("message/send", card_msg({"main_title": {"title": "t"}}), 40058),
    ("message/send", card_msg({"card_type": "button_interaction"}), 40058),
    ("message/update_template_card", {"agentid": AGENT_ID, "button": {}}, 40058),
    ("message/update_template_card", {"response_code": "rc", "agentid": "x"}, 40056),
    ("message/update_template_card", {"response_code": "rc", "agentid": AGENT_ID}, 40058),
    ("appchat/send", {"msgtype": "text", "text": {"content": "x"}}, 86001),
    ("appchat/send", {"chatid": "c1", "msgtype": "template_card", "template_card": {}}, 40008),
    ("appchat/send", {"chatid": "c1", "msgtype": "text", "text": {"content": ""}}, 44004),
    ("kf/sync_msg", {"open_kfid": ""}, 95000),
    ("kf/sync_msg", {"open_kfid": "wk1", "limit": 0}, 40058),
    ("kf/send_msg", {"touser": "wm1", "msgtype": "text", "text": {"content": "x"}}, 95000),
    ("kf/send_msg", {"open_kfid": "wk1", "msgtype": "text", "text": {"content": "x"}}, 40058),
    ("kf/send_msg", {"touser": "wm1", "open_kfid": "wk1", "msgtype": "text"}, 40058),
    ("kf/send_msg_on_event", {"msgtype": "text", "text": {"content": "x"}}, 40058),
    ("kf/service_state/get", {"open_kfid": "wk1"}, 40058),
    (
        "kf/service_state/trans",
        {"open_kfid": "wk1", "external_userid": "wm1", "service_state": 3},
        40058,
    ),
    (
        "kf/service_state/trans",
        {"open_kfid": "wk1", "external_userid": "wm1", "service_state": 9},
        40058,
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "errcode"), BAD_REQUESTS, ids=[f"{p}-{c}" for p, _, c in BAD_REQUESTS]
)
async def test_bad_requests_get_wecom_errcodes_and_are_not_recorded(
    sandbox: SandboxTransport, log: SandboxLog, path: str, body: dict[str, Any], errcode: int
) -> None:
    answer = await post(sandbox, path, body)
    assert answer["errcode"] == errcode
    assert isinstance(answer["errmsg"], str)
    assert await log.recent() == []
    # The emulator underneath records the refusal, with its errcode.
    assert [(c.path, c.errcode) for c in sandbox.emulator.history] == [(path, errcode)]


async def test_errcodes_match_the_test_fake(aiohttp_server: Any) -> None:
    """The sandbox and the tests' fake are one emulator: same request, same errcode."""
    fake = FakeWeCom(corp_id=CORP_ID)
    server = await aiohttp_server(fake.app)
    base = server.make_url("/cgi-bin/")

    class NoLog:  # validation only: nothing is recorded for rejected calls
        async def record(self, *args: Any, **kw: Any) -> int:
            return 1

    sandbox = SandboxTransport(NoLog(), CORP_ID, None)  # type: ignore[arg-type]
    async with aiohttp.ClientSession() as session:
        async with session.get(
            base / "gettoken", params={"corpid": CORP_ID, "corpsecret": fake.secret}
        ) as r:
            token = (await r.json())["access_token"]
        for path, body, _ in BAD_REQUESTS:
            async with session.post(
                base.join(URL(path)).with_query(access_token=token), json=body
            ) as r:
                expected = (await r.json())["errcode"]
            assert (await post(sandbox, path, body))["errcode"] == expected, path
        async with session.post(base / "webhook" / "send", params={"key": "nope"}, json={}) as r:
            fake_robot = (await r.json())["errcode"]
        for credential, errcode in ((None, 41001), ("forged", 40014)):
            url = base / "message" / "send"
            async with session.post(
                url.with_query(access_token=credential) if credential else url, json=text_msg()
            ) as r:
                over_http = (await r.json())["errcode"]
            in_process = await sandbox.exchange("POST", api("message/send", credential), text_msg())
            assert isinstance(in_process, dict)
            assert over_http == in_process["errcode"] == errcode
        async with session.post(
            base.join(URL("message/send")).with_query(access_token=token), data=b""
        ) as r:
            assert (await r.json())["errcode"] == 47001
    no_key = await sandbox.exchange("POST", BASE.join(URL("webhook/send")), {"msgtype": "text"})
    assert isinstance(no_key, dict) and no_key["errcode"] == fake_robot == 93000
    not_json = await sandbox.exchange("POST", api("message/send"), None)
    assert isinstance(not_json, dict) and not_json["errcode"] == 47001


async def test_credentials_are_checked(sandbox: SandboxTransport) -> None:
    missing = await sandbox.exchange("POST", api("message/send", token=None), text_msg())
    wrong = await sandbox.exchange("POST", api("message/send", token="tok-real"), text_msg())
    assert isinstance(missing, dict) and missing["errcode"] == 41001
    assert isinstance(wrong, dict) and wrong["errcode"] == 40014
    not_json = await sandbox.exchange("POST", api("message/send"), None)
    assert isinstance(not_json, dict) and not_json["errcode"] == 47001


async def test_configured_agent_id_is_enforced(sandbox: SandboxTransport) -> None:
    assert (await post(sandbox, "message/send", text_msg(agentid=1)))["errcode"] == 40056


async def test_unknown_paths_and_methods_are_http_errors(sandbox: SandboxTransport) -> None:
    with pytest.raises(TransportError, match="HTTP 404") as nowhere:
        await sandbox.exchange("POST", api("user/delete"), {})
    assert SANDBOX_TOKEN not in str(nowhere.value)
    with pytest.raises(TransportError, match="HTTP 405"):
        await sandbox.exchange("GET", api("message/send"), None)


async def test_good_calls_answer_like_wecom(sandbox: SandboxTransport, log: SandboxLog) -> None:
    sent = await post(sandbox, "message/send", card_msg())
    assert sent["errcode"] == 0 and sent["invaliduser"] == ""
    assert sent["msgid"] and sent["response_code"]
    plain = await post(sandbox, "message/send", text_msg())
    assert plain["msgid"] and "response_code" not in plain
    updated = await post(
        sandbox,
        "message/update_template_card",
        {
            "userids": ["boss"],
            "agentid": AGENT_ID,
            "response_code": sent["response_code"],
            "button": {"replace_name": "已认领"},
        },
    )
    assert updated == {"errcode": 0, "errmsg": "ok", "invaliduser": []}
    page = await post(sandbox, "kf/sync_msg", {"open_kfid": "wk1", "cursor": "c7", "limit": 10})
    assert page == {
        "errcode": 0,
        "errmsg": "ok",
        "next_cursor": "c7",
        "has_more": 0,
        "msg_list": [],
    }
    kf = await post(
        sandbox,
        "kf/send_msg",
        {
            "touser": "wm1",
            "open_kfid": "wk1",
            "msgtype": "text",
            "text": {"content": "您好"},
            "msgid": "m1",
        },
    )
    assert kf["msgid"] == "m1"
    welcome = await post(
        sandbox,
        "kf/send_msg_on_event",
        {"code": "wc", "msgtype": "text", "text": {"content": "欢迎"}},
    )
    assert welcome["msgid"]
    moved = await post(
        sandbox,
        "kf/service_state/trans",
        {"open_kfid": "wk1", "external_userid": "wm1", "service_state": 3, "servicer_userid": "s1"},
    )
    assert moved["msg_code"]
    state = await post(
        sandbox, "kf/service_state/get", {"open_kfid": "wk1", "external_userid": "wm1"}
    )
    assert (state["service_state"], state["servicer_userid"]) == (3, "s1")
    robot = await sandbox.exchange(
        "POST",
        BASE.join(URL("webhook/send")).with_query(key=ROBOT_KEY),
        {"msgtype": "markdown", "markdown": {"content": "**告警**"}},
    )
    assert robot == {"errcode": 0, "errmsg": "ok"}
    chat = {"chatid": "anchor1", "msgtype": "text", "text": {"content": "heads"}, "safe": 0}
    assert await post(sandbox, "appchat/send", chat) == {"errcode": 0, "errmsg": "ok"}
    # Everything but kf/sync_msg is recorded, oldest first in `since`.
    paths = [c.path for c in await log.since(0)]
    assert paths == [
        "message/send",
        "message/send",
        "message/update_template_card",
        "kf/send_msg",
        "kf/send_msg_on_event",
        "kf/service_state/trans",
        "kf/service_state/get",
        "webhook/send",
        "appchat/send",
    ]
    first = (await log.since(0))[0]
    assert json.loads(first.body) == card_msg()
    assert json.loads(first.answer) == sent
    assert first.at == datetime.fromtimestamp(NOW, UTC)


async def test_duplicate_check_records_once(sandbox: SandboxTransport, log: SandboxLog) -> None:
    body = card_msg(enable_duplicate_check=1, duplicate_check_interval=600)
    first = await post(sandbox, "message/send", body)
    again = await post(sandbox, "message/send", body)
    assert first["errcode"] == again["errcode"] == 0
    assert len(await log.recent()) == 1
    # Both calls are in the emulator's history; WeCom delivers (and the sandbox records) one.
    sends = [c for c in sandbox.emulator.history if c.path == "message/send"]
    assert [c.repeat for c in sends] == [False, True]


async def test_a_failing_log_is_service_unavailable(
    sandbox: SandboxTransport, writer: GroupCommitWriter
) -> None:
    await writer.close()
    with pytest.raises(ServiceUnavailable, match="sandbox log unavailable") as failed:
        await post(sandbox, "message/send", text_msg())
    assert failed.value.__cause__ is None and SANDBOX_TOKEN not in str(failed.value)


def test_api_path() -> None:
    assert api_path(URL("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k")) == "webhook/send"
    assert api_path(URL("http://127.0.0.1:8080/x/cgi-bin/message/send")) == "message/send"
    assert api_path(URL("/message/send")) == "message/send"


# -- a real WeComClient over the sandbox --------------------------------------------------------


async def test_client_sends_through_the_sandbox_and_every_call_is_recorded(
    sandbox: SandboxTransport, log: SandboxLog, engine: Engine
) -> None:
    async with WeComClient(CORP_ID, "", agent_id=AGENT_ID, transport=sandbox) as client:
        sent = await client.message.send_template_card(["boss", "deputy"], CARD)
        assert sent.response_code and sent.msgid.startswith("sandbox-")
        await client.message.update_template_card(
            ["boss"], sent.response_code, replace_name="已认领"
        )
        await client.robot.send_markdown(ROBOT_KEY, "**客户维权风险** 请尽快处理")
        assert await client.tokens.get() == SANDBOX_TOKEN
    calls = await log.recent()
    assert [c.path for c in calls] == [
        "webhook/send",
        "message/update_template_card",
        "message/send",
    ]
    card_call = calls[2]
    assert json.loads(card_call.body)["template_card"] == CARD
    assert json.loads(card_call.body)["touser"] == "boss|deputy"
    assert json.loads(card_call.answer)["response_code"] == sent.response_code
    assert json.loads(calls[1].body)["button"] == {"replace_name": "已认领"}
    assert json.loads(calls[0].body)["markdown"]["content"] == "**客户维权风险** 请尽快处理"
    assert "客户维权风险" in card_call.body  # ensure_ascii=False: readable in the database
    # No credential in any column of any row.
    with engine.connect() as conn:
        dump = repr(conn.execute(text("SELECT * FROM sandbox_call")).all())
    assert SANDBOX_TOKEN not in dump and ROBOT_KEY not in dump and "access_token" not in dump


async def test_client_errors_from_the_sandbox_are_typed(sandbox: SandboxTransport) -> None:
    async with WeComClient(CORP_ID, "", agent_id=AGENT_ID, transport=sandbox) as client:
        with pytest.raises(ApiError) as bad:
            await client.call("message/send", text_msg(touser=""))
    assert bad.value.errcode == 81013


async def test_client_takes_a_session_or_a_transport(sandbox: SandboxTransport) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="not both"):
            WeComClient(CORP_ID, "", session=session, transport=sandbox)
        borrowed = AiohttpTransport(session)
        await borrowed.close()
        assert not session.closed  # a borrowed session is left to its owner


# -- the pages ---------------------------------------------------------------------------------


async def record_hostile(sandbox: SandboxTransport) -> None:
    card = {
        **CARD,
        "main_title": {"title": f"标题{HOSTILE}", "desc": f"描述{HOSTILE}"},
        "sub_title_text": f"客户：{HOSTILE}",
        "horizontal_content_list": [{"keyname": "客户", "value": HOSTILE}],
        "button_list": [{"text": HOSTILE, "style": 3, "key": "k"}],
        "card_action": {"type": 1, "url": "javascript:alert(1)"},
    }
    assert (await post(sandbox, "message/send", card_msg(card)))["errcode"] == 0


async def test_page_renders_the_card(
    aiohttp_client: ClientFactory, sandbox: SandboxTransport, log: SandboxLog
) -> None:
    await post(sandbox, "message/send", card_msg())
    await post(
        sandbox,
        "message/send",
        text_msg(msgtype="markdown", markdown={"content": "**重点**\n次行"}),
    )
    await post(
        sandbox,
        "message/update_template_card",
        {
            "userids": ["boss"],
            "agentid": AGENT_ID,
            "response_code": "rc",
            "button": {"replace_name": "已认领"},
        },
    )
    await sandbox.exchange(
        "POST",
        BASE.join(URL("webhook/send")).with_query(key=ROBOT_KEY),
        {"msgtype": "text", "text": {"content": "群通知", "mentioned_list": ["boss"]}},
    )
    chat = {"chatid": "anchor1", "msgtype": "text", "text": {"content": "archive 3 ab12"}}
    await post(sandbox, "appchat/send", chat)
    app = web.Application()
    add_sandbox_routes(app, log)
    client = await aiohttp_client(app)
    resp = await client.get("/sandbox/")
    assert resp.status == 200 and resp.content_type == "text/html"
    html = await resp.text()
    assert f"<title>{SANDBOX_TITLE}</title>" in html
    for shown in (
        "客户维权风险",
        "高风险 · 客户提到「维权」",
        "客户：我要【维权】\n第二行",  # line breaks kept (pre-wrap)
        '<td class="k">命中词</td><td class="v">维权</td>',
        '<span class="btn s1" role="button" aria-disabled="true">认领</span>',
        '<span class="btn s2" role="button" aria-disabled="true">已处理</span>',
        '<a href="https://sentinel.example/review/a1"',
        "发给：boss",
        "<pre>**重点**\n次行</pre>",
        "卡片按钮更新为：已认领",
        "群机器人（@boss）",
        "发给：群聊 anchor1",
        "<pre>archive 3 ab12</pre>",
        "<details><summary>JSON</summary>",
    ):
        assert shown in html, shown
    # Newest first: the robot call (recorded last) comes before the card.
    assert html.index("webhook/send") < html.index("卡片按钮更新为") < html.index("客户维权风险")
    assert SANDBOX_TOKEN not in html and ROBOT_KEY not in html
    redirect = await client.get("/sandbox", allow_redirects=False)
    assert redirect.status == 302 and redirect.headers["Location"] == "/sandbox/"


async def test_page_escapes_chat_text(
    aiohttp_client: ClientFactory, sandbox: SandboxTransport, log: SandboxLog
) -> None:
    await record_hostile(sandbox)
    app = web.Application()
    add_sandbox_routes(app, log, prefix="/sb")
    client = await aiohttp_client(app)
    html = await (await client.get("/sb/")).text()
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "标题&lt;script&gt;" in html and '<span class="btn s3"' in html
    assert 'href="javascript:' not in html  # only http(s) links are clickable
    assert "javascript:alert(1)" in html  # …but it is still shown, as text


async def test_empty_page(aiohttp_client: ClientFactory, log: SandboxLog) -> None:
    app = web.Application()
    add_sandbox_routes(app, log)
    client = await aiohttp_client(app)
    html = await (await client.get("/sandbox/")).text()
    assert "还没有记录" in html


async def test_calls_json_filters_by_after(
    aiohttp_client: ClientFactory, sandbox: SandboxTransport, log: SandboxLog
) -> None:
    for n in range(3):
        await post(sandbox, "message/send", text_msg(text={"content": f"第{n}条"}))
    key = web.AppKey("sandbox_log", SandboxLog)
    app = web.Application()
    app[key] = log
    add_sandbox_routes(app, key)  # the log may be looked up per request (made in cleanup_ctx)
    client = await aiohttp_client(app)
    everything = await (await client.get("/sandbox/calls.json")).json()
    assert [c["body"]["text"]["content"] for c in everything] == ["第0条", "第1条", "第2条"]
    first = everything[0]
    assert first["path"] == "message/send" and first["answer"]["errcode"] == 0
    assert datetime.fromisoformat(first["at"]) == datetime.fromtimestamp(NOW, UTC)
    later = await (await client.get("/sandbox/calls.json", params={"after": first["id"]})).json()
    assert [c["id"] for c in later] == [c["id"] for c in everything[1:]]
    newest = await (
        await client.get("/sandbox/calls.json", params={"after": everything[-1]["id"]})
    ).json()
    assert newest == []
    one = await (await client.get("/sandbox/calls.json", params={"limit": 1})).json()
    assert len(one) == 1
    for bad in ({"after": "x"}, {"limit": "0"}, {"limit": "501"}):
        assert (await client.get("/sandbox/calls.json", params=bad)).status == 400
    raw = await (await client.get("/sandbox/calls.json")).text()
    assert "第0条" in raw and SANDBOX_TOKEN not in raw


async def test_log_recent_and_since(log: SandboxLog) -> None:
    ids = [await log.record("message/send", {"n": n}, {"errcode": 0}) for n in range(5)]
    assert ids == sorted(ids)
    recent = await log.recent(limit=2)
    assert [c.id for c in recent] == ids[:-3:-1]
    assert all(isinstance(c, SandboxCall) for c in recent)
    assert [c.id for c in await log.since(ids[2])] == ids[3:]
    assert recent[0].at.tzinfo is not None
    with pytest.raises(ValueError):
        await log.recent(0)


def test_schema_has_the_sandbox_table(engine: Engine) -> None:
    create_schema(engine)  # again: the column check passes with the new table
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM sandbox_call")).scalar_one() == 0
