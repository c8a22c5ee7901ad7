"""FakeWeCom itself behaves like WeCom: token checks, required fields, scripted faults, paging."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from wecom_sdk.testing.fake_api import FakeWeCom


@pytest.fixture
async def fake_server(aiohttp_server: Any) -> tuple[FakeWeCom, TestServer]:
    fake = FakeWeCom()
    return fake, await aiohttp_server(fake.app)


async def _token(http: aiohttp.ClientSession, server: TestServer, fake: FakeWeCom) -> str:
    url = server.make_url("/cgi-bin/gettoken").with_query(
        corpid=fake.corp_id, corpsecret=fake.secret
    )
    async with http.get(url) as resp:
        data = await resp.json()
    assert data["errcode"] == 0 and data["expires_in"] == 7200
    return str(data["access_token"])


async def _post(
    http: aiohttp.ClientSession, server: TestServer, path: str, body: Any, **q: str
) -> dict[str, Any]:
    url = server.make_url(f"/cgi-bin/{path}")
    async with http.post(url.with_query(**q) if q else url, json=body) as resp:
        return dict(await resp.json())


async def test_gettoken_checks_credentials_and_reuses_token(fake_server: Any) -> None:
    fake, server = fake_server
    async with aiohttp.ClientSession() as http:
        for query, code in [
            ({"corpid": "nope", "corpsecret": fake.secret}, 40013),
            ({"corpid": fake.corp_id, "corpsecret": "bad"}, 40001),
        ]:
            async with http.get(server.make_url("/cgi-bin/gettoken").with_query(query)) as resp:
                assert (await resp.json())["errcode"] == code
        first = await _token(http, server, fake)
        assert await _token(http, server, fake) == first
    assert fake.token_fetches == 2


async def test_rejects_missing_bad_expired_and_revoked_tokens(fake_server: Any) -> None:
    fake, server = fake_server
    body = {"touser": "u1", "agentid": 1, "msgtype": "text", "text": {"content": "hi"}}
    async with aiohttp.ClientSession() as http:
        assert (await _post(http, server, "message/send", body))["errcode"] == 41001
        assert (await _post(http, server, "message/send", body, access_token="forged"))[
            "errcode"
        ] == 40014
        token = await _token(http, server, fake)
        assert (await _post(http, server, "message/send", body, access_token=token))["errcode"] == 0
        assert fake.revoke_token() == token
        assert (await _post(http, server, "message/send", body, access_token=token))[
            "errcode"
        ] == 40014
        token = await _token(http, server, fake)
        fake.expire_tokens()
        assert (await _post(http, server, "message/send", body, access_token=token))[
            "errcode"
        ] == 42001
    assert len(fake.calls) == 1 and fake.calls[0].body == body


@pytest.mark.parametrize(
    ("path", "body", "errcode"),
    [
        ("message/send", {"agentid": 1, "msgtype": "text", "text": {"content": "x"}}, 81013),
        (
            "message/send",
            {"touser": "u", "agentid": "1", "msgtype": "text", "text": {"content": "x"}},
            40056,
        ),
        ("message/send", {"touser": "u", "agentid": 1, "msgtype": "fax", "fax": {}}, 40008),
        (
            "message/send",
            {"touser": "u", "agentid": 1, "msgtype": "text", "text": {"content": ""}},
            44004,
        ),
        (
            "message/send",
            {"touser": "u", "agentid": 1, "msgtype": "text", "text": {"content": "x" * 2049}},
            45002,
        ),
        (
            "message/send",
            {"touser": "u", "agentid": 1, "msgtype": "template_card", "template_card": {}},
            40058,
        ),
        (
            "message/send",
            {
                "touser": "u",
                "agentid": 1,
                "msgtype": "template_card",
                "template_card": {"card_type": "button_interaction"},
            },
            40058,
        ),
        ("kf/sync_msg", {"limit": 10}, 95000),
        ("kf/sync_msg", {"open_kfid": "wk1", "limit": 1001}, 40058),
        ("kf/send_msg", {"open_kfid": "wk1", "msgtype": "text", "text": {"content": "x"}}, 40058),
        ("kf/send_msg", {"touser": "wm1", "open_kfid": "wk1", "msgtype": "text"}, 40058),
        ("message/update_template_card", {"userids": ["u"], "agentid": 1}, 40058),
    ],
)
async def test_rejects_bad_input(
    fake_server: Any, path: str, body: dict[str, Any], errcode: int
) -> None:
    fake, server = fake_server
    async with aiohttp.ClientSession() as http:
        token = await _token(http, server, fake)
        assert (await _post(http, server, path, body, access_token=token))["errcode"] == errcode
    assert fake.calls == []


async def test_scripted_faults_and_robot_key(fake_server: Any) -> None:
    fake, server = fake_server
    body = {"msgtype": "text", "text": {"content": "hi"}}
    fake.fail_next("webhook/send", -1)
    fake.http_500("/cgi-bin/webhook/send")
    async with aiohttp.ClientSession() as http:
        async with http.post(
            server.make_url("/cgi-bin/webhook/send").with_query(key="robot-key-1"), json=body
        ) as resp:
            assert resp.status == 500
        assert (await _post(http, server, "webhook/send", body, key="wrong"))["errcode"] == 93000
        assert (await _post(http, server, "webhook/send", body, key="robot-key-1"))["errcode"] == -1
        assert (await _post(http, server, "webhook/send", body, key="robot-key-1"))["errcode"] == 0
    assert [c.token for c in fake.calls_to("webhook/send")] == ["robot-key-1"]


async def test_sync_msg_pages_with_cursor(fake_server: Any) -> None:
    fake, server = fake_server
    fake.add_kf_messages("wk1", [{"msgid": str(i)} for i in range(5)])
    async with aiohttp.ClientSession() as http:
        token = await _token(http, server, fake)
        page1 = await _post(
            http, server, "kf/sync_msg", {"open_kfid": "wk1", "limit": 3}, access_token=token
        )
        page2 = await _post(
            http,
            server,
            "kf/sync_msg",
            {"open_kfid": "wk1", "limit": 3, "cursor": page1["next_cursor"]},
            access_token=token,
        )
    assert (len(page1["msg_list"]), page1["has_more"]) == (3, 1)
    assert (len(page2["msg_list"]), page2["has_more"]) == (2, 0)
