"""One emulator core behind both front ends: FakeWeCom over HTTP and EmulatorTransport in process
answer the same request with the same errcode, and the core records every call it answers."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from yarl import URL

from wecom_sdk.client import WeComClient
from wecom_sdk.crypto import MsgCrypto
from wecom_sdk.errors import ApiError, ServiceUnavailable, TransportError
from wecom_sdk.messages.callback import TextMessage, parse
from wecom_sdk.testing import (
    CallbackSealer,
    EmulatorTransport,
    FakeWeCom,
    WeComEmulator,
    text_message_xml,
)

CORP_ID = "wwemulatorcorp"
AGENT_ID = 1000002
BASE = URL("https://qyapi.weixin.qq.com/cgi-bin/")
TEXT: dict[str, Any] = {
    "touser": "u1",
    "agentid": AGENT_ID,
    "msgtype": "text",
    "text": {"content": "hi"},
}
KF_TEXT: dict[str, Any] = {"msgtype": "text", "text": {"content": "x"}}

# (path, credential query, body as sent on the wire, expected errcode)
BAD: list[tuple[str, dict[str, str], str, int]] = [
    ("message/send", {}, json.dumps(TEXT), 41001),
    ("message/send", {"access_token": "forged"}, json.dumps(TEXT), 40014),
    ("message/send", {"access_token": "TOKEN"}, "not json", 47001),
    ("message/send", {"access_token": "TOKEN"}, "[1, 2]", 47001),
    ("message/send", {"access_token": "TOKEN"}, json.dumps({**TEXT, "touser": ""}), 81013),
    ("message/send", {"access_token": "TOKEN"}, json.dumps({**TEXT, "agentid": True}), 40056),
    ("message/send", {"access_token": "TOKEN"}, json.dumps({**TEXT, "msgtype": "fax"}), 40008),
    (
        "message/send",
        {"access_token": "TOKEN"},
        json.dumps({**TEXT, "text": {"content": ""}}),
        44004,
    ),
    (
        "message/send",
        {"access_token": "TOKEN"},
        json.dumps({**TEXT, "text": {"content": "字" * 683}}),
        45002,
    ),
    (
        "message/update_template_card",
        {"access_token": "TOKEN"},
        json.dumps({"response_code": "rc", "agentid": AGENT_ID}),
        40058,
    ),
    ("kf/sync_msg", {"access_token": "TOKEN"}, json.dumps({"limit": 10}), 95000),
    (
        "kf/sync_msg",
        {"access_token": "TOKEN"},
        json.dumps({"open_kfid": "wk1", "limit": True}),
        40058,
    ),
    ("kf/send_msg", {"access_token": "TOKEN"}, json.dumps({"touser": "wm1", **KF_TEXT}), 95000),
    (
        "kf/service_state/trans",
        {"access_token": "TOKEN"},
        json.dumps({"open_kfid": "wk1", "external_userid": "wm1", "service_state": True}),
        40058,
    ),
    ("appchat/send", {"access_token": "TOKEN"}, json.dumps({"msgtype": "text"}), 86001),
    (
        "appchat/send",
        {"access_token": "TOKEN"},
        json.dumps({"chatid": "c1", "msgtype": "fax", "fax": {}}),
        40008,
    ),
    (
        "appchat/send",
        {"access_token": "TOKEN"},
        json.dumps({"chatid": "c1", "msgtype": "text", "text": {"content": "字" * 683}}),
        45002,
    ),
    ("webhook/send", {"key": "wrong"}, json.dumps({"msgtype": "text"}), 93000),
]


def _query(query: dict[str, str], token: str) -> dict[str, str]:
    return {k: token if v == "TOKEN" else v for k, v in query.items()}


async def _token(emulator: WeComEmulator) -> str:
    query = {"corpid": emulator.corp_id, "corpsecret": str(emulator.secret)}
    reply = await emulator.handle("GET", "gettoken", query, None)
    assert reply.json is not None
    return str(reply.json["access_token"])


@pytest.fixture
async def fake_server(aiohttp_server: Any) -> tuple[FakeWeCom, TestServer]:
    fake = FakeWeCom(corp_id=CORP_ID)
    return fake, await aiohttp_server(fake.app)


async def test_the_same_bad_request_gets_the_same_errcode_over_http_and_in_process(
    fake_server: tuple[FakeWeCom, TestServer],
) -> None:
    fake, server = fake_server
    emulator = WeComEmulator(corp_id=CORP_ID)
    transport = EmulatorTransport(emulator)
    fake_token, local_token = await _token(fake), await _token(emulator)
    async with aiohttp.ClientSession() as http:
        for path, query, body, errcode in BAD:
            url = server.make_url(f"/cgi-bin/{path}").with_query(_query(query, fake_token))
            async with http.post(url, data=body) as resp:
                over_http = (await resp.json())["errcode"]
            local = await emulator.handle("POST", path, _query(query, local_token), body)
            assert local.json is not None
            assert over_http == local.json["errcode"] == errcode, path
            if body.startswith("{"):  # the transport only sends JSON objects
                url = BASE.join(URL(path)).with_query(_query(query, local_token))
                answer = await transport.exchange("POST", url, json.loads(body))
                assert isinstance(answer, dict) and answer["errcode"] == errcode, path
    # Every refusal is recorded, with its errcode; none counts as an accepted call.
    refused = [c.errcode for c in fake.history if c.path != "gettoken"]
    assert refused == [errcode for _, _, _, errcode in BAD]
    assert fake.calls == [] and emulator.calls == []
    assert fake.history[-1].token == "wrong" and fake.history[0].token == ""


async def test_a_repeated_call_is_recorded_twice() -> None:
    emulator = WeComEmulator(corp_id=CORP_ID)
    async with WeComClient(
        CORP_ID, str(emulator.secret), agent_id=AGENT_ID, transport=EmulatorTransport(emulator)
    ) as client:
        await client.message.send_text("u1", "same")
        await client.message.send_text("u1", "same")
        card = {"card_type": "text_notice", "main_title": {"title": "t"}}
        await client.message.send_template_card("u1", card)  # duplicate check on
        await client.message.send_template_card("u1", card)
    sends = [c for c in emulator.history if c.path == "message/send"]
    assert len(sends) == 4 and [c.repeat for c in sends] == [False, False, False, True]
    assert all(c.errcode == 0 and c.answer["msgid"] for c in sends)
    # Accepted calls count each delivery once: WeCom's duplicate check dropped the 4th.
    assert len(emulator.calls_to("message/send")) == 3
    assert emulator.history[0].path == "gettoken"
    assert emulator.state.token_fetches == 1


async def test_a_repeated_kf_msgid_is_recorded_twice_and_delivered_once() -> None:
    emulator = WeComEmulator(kf_strict=True)
    emulator.add_kf_messages("wk1", [{"external_userid": "wm1", "origin": 3, "msgtype": "text"}])
    token = await _token(emulator)
    body = {"touser": "wm1", "open_kfid": "wk1", "msgid": "m1", **KF_TEXT}
    for _ in range(2):
        reply = await emulator.handle(
            "POST", "kf/send_msg", {"access_token": token}, json.dumps(body)
        )
        assert reply.json is not None and reply.json["msgid"] == "m1"
    assert [c.repeat for c in emulator.history if c.path == "kf/send_msg"] == [False, True]
    assert len(emulator.state.kf_deliveries) == 1 and emulator.state.kf_duplicates == 1


async def test_http_errors_through_the_transport() -> None:
    emulator = WeComEmulator()
    transport = EmulatorTransport(emulator)
    with pytest.raises(TransportError, match="HTTP 404"):
        await transport.exchange("POST", BASE / "user" / "delete", {})
    with pytest.raises(TransportError, match="HTTP 405"):
        await transport.exchange("GET", BASE / "message" / "send", None)
    emulator.http_500("message/send")
    url = (BASE / "message" / "send").with_query(access_token="secret-token")
    with pytest.raises(ServiceUnavailable, match="HTTP 500") as failed:
        await transport.exchange("POST", url, TEXT)
    assert "secret-token" not in str(failed.value)
    assert emulator.history == []  # HTTP errors carry no WeCom answer


async def test_scripted_errcode_reaches_the_client_in_process() -> None:
    emulator = WeComEmulator()
    emulator.fail_next("message/send", 48002)
    async with WeComClient(
        emulator.corp_id, str(emulator.secret), agent_id=1, transport=EmulatorTransport(emulator)
    ) as client:
        with pytest.raises(ApiError) as info:
            await client.message.send_text("u1", "x")
    assert info.value.errcode == 48002
    assert [c.errcode for c in emulator.history] == [0, 48002]


async def test_sandbox_settings_constant_token_any_secret_and_robot_key() -> None:
    emulator = WeComEmulator(
        corp_id=CORP_ID,
        secret=None,
        robot_keys=None,
        access_token="constant",
        agent_id=AGENT_ID,
        id_prefix="sandbox-",
    )
    reply = await emulator.handle("GET", "gettoken", {"corpid": CORP_ID, "corpsecret": ""}, None)
    assert reply.json == {
        "errcode": 0,
        "errmsg": "ok",
        "access_token": "constant",
        "expires_in": 7200,
    }
    missing = await emulator.handle("GET", "gettoken", {"corpid": CORP_ID}, None)
    assert missing.json is not None and missing.json["errcode"] == 41004
    sent = await emulator.handle(
        "POST", "message/send", {"access_token": "constant"}, json.dumps(TEXT)
    )
    assert sent.json is not None and sent.json["msgid"].startswith("sandbox-msg-")
    other_app = json.dumps({**TEXT, "agentid": 1})
    wrong = await emulator.handle("POST", "message/send", {"access_token": "constant"}, other_app)
    assert wrong.json is not None and wrong.json["errcode"] == 40056
    robot = json.dumps({"msgtype": "text", "text": {"content": "x"}})
    any_key = await emulator.handle("POST", "webhook/send", {"key": "whatever"}, robot)
    no_key = await emulator.handle("POST", "webhook/send", {}, robot)
    assert any_key.json is not None and any_key.json["errcode"] == 0
    assert no_key.json is not None and no_key.json["errcode"] == 93000


async def test_sync_msg_answers_a_foreign_cursor_with_an_empty_final_page() -> None:
    emulator = WeComEmulator()
    emulator.add_kf_messages("wk1", [{"msgid": "m1"}])
    token = await _token(emulator)
    body = json.dumps({"open_kfid": "wk1", "cursor": "c7"})
    reply = await emulator.handle("POST", "kf/sync_msg", {"access_token": token}, body)
    assert reply.json == {
        "errcode": 0,
        "errmsg": "ok",
        "next_cursor": "c7",
        "has_more": 0,
        "msg_list": [],
    }


async def test_history_limit_keeps_the_latest_calls() -> None:
    emulator = WeComEmulator(history_limit=3)
    for _ in range(5):
        await emulator.handle("POST", "message/send", {}, json.dumps(TEXT))
    assert len(emulator.history) == 3 and {c.errcode for c in emulator.history} == {41001}


async def test_hook_sees_the_recorded_call_before_the_answer() -> None:
    emulator = WeComEmulator()
    seen: list[tuple[str, int, bool]] = []

    async def hook(call: Any) -> None:
        seen.append((call.path, call.errcode, call is emulator.history[-1]))

    emulator.on_accepted("/cgi-bin/message/send", hook)
    token = await _token(emulator)
    await emulator.handle("POST", "message/send", {"access_token": token}, json.dumps(TEXT))
    await emulator.handle("POST", "message/send", {"access_token": token}, "{}")  # refused
    emulator.on_accepted("message/send", None)
    await emulator.handle("POST", "message/send", {"access_token": token}, json.dumps(TEXT))
    assert seen == [("message/send", 0, True)]


# -- the callback sealer -----------------------------------------------------------------------

TOKEN, AES_KEY, SAMPLE_CORP = (
    "QDG6eK",
    "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    "wx5823bf96d3bd56c7",
)


def test_sealer_builds_what_the_server_opens() -> None:
    crypto = MsgCrypto(TOKEN, AES_KEY, SAMPLE_CORP, clock=lambda: 1_700_000_000)
    sealer = CallbackSealer(crypto, SAMPLE_CORP, "1000002")
    request = sealer.text("你好", 42, "zhangsan", create_time=1_700_000_000, nonce="123")
    assert request.query["timestamp"] == "1700000000" and request.query["nonce"] == "123"
    plain = crypto.open_envelope(
        request.query["msg_signature"], request.query["timestamp"], "123", request.body
    )
    assert (
        plain
        == request.inner
        == text_message_xml(
            "你好",
            42,
            to_user=SAMPLE_CORP,
            from_user="zhangsan",
            agent_id=1000002,
            create_time=1_700_000_000,
        )
    )
    message = parse(plain)
    assert isinstance(message, TextMessage) and message.content == "你好"
    assert b"<AgentID><![CDATA[1000002]]></AgentID>" in request.body
    assert request.target("/wecom/callback").startswith("/wecom/callback?msg_signature=")


def test_sealer_without_agent_id_omits_it_from_the_envelope() -> None:
    crypto = MsgCrypto(TOKEN, AES_KEY, SAMPLE_CORP)
    request = CallbackSealer(crypto, SAMPLE_CORP, None).text("x", 1, "u")
    assert b"AgentID" not in request.body and b"<AgentID>0</AgentID>" in request.inner
