"""An independent WeCom implementation (wechatpy) drives the server: URL verification, 200 distinct
pushes plus their retries, and every passive reply decrypted on its side."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.web.app import create_app
from bot.web.keys import ARCHIVE
from tests.support.app import AES_KEY, AGENT_ID, CORP_ID, TOKEN, make_config, sample_reply, text_xml
from wecom_sdk.xmlsafe import parse_xml

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
PATH = "/wecom/callback"


class WeComPeer:
    """Plays WeCom with wechatpy's crypto (not ours)."""

    def __init__(self) -> None:
        self.crypto = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
        self.rng = random.Random(42)

    def seal(self, plain: bytes | str) -> tuple[bytes, dict[str, str]]:
        nonce, ts = str(self.rng.randrange(10**9)), str(int(time.time()))
        text = plain.decode() if isinstance(plain, bytes) else plain
        env = parse_xml(self.crypto.encrypt_message(text, nonce, ts))
        body = (
            f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
            f"<Encrypt><![CDATA[{env['Encrypt']}]]></Encrypt>"
            f"<AgentID><![CDATA[{AGENT_ID}]]></AgentID></xml>"
        ).encode()
        return body, {"msg_signature": str(env["MsgSignature"]), "timestamp": ts, "nonce": nonce}

    def open_reply(self, body: bytes) -> dict[str, Any]:
        env = parse_xml(body)
        plain = self.crypto.decrypt_message(
            body.decode(), str(env["MsgSignature"]), str(env["TimeStamp"]), str(env["Nonce"])
        )
        return parse_xml(plain)


@pytest.fixture(params=["embedded", "shared"])
async def client(request: pytest.FixtureRequest, aiohttp_client: ClientFactory, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "embedded":
        config = make_config(tmp_path, request.getfixturevalue("sqlite_url"))
    else:
        config = make_config(
            tmp_path,
            request.getfixturevalue("pg_schema_url"),
            redis_url=request.getfixturevalue("redis_url"),
            redis_prefix=request.getfixturevalue("redis_prefix"),
        )
    return await aiohttp_client(create_app(config))


async def test_url_verification_by_independent_peer(client: TestClient[Any, Any]) -> None:
    peer = WeComPeer()
    echostr_plain = "6843029584932015"
    body, query = peer.seal(echostr_plain)
    echostr = str(parse_xml(body)["Encrypt"])
    resp = await client.get(PATH, params={**query, "echostr": echostr})
    assert resp.status == 200
    assert await resp.text() == echostr_plain


async def test_200_pushes_and_retries_by_independent_peer(client: TestClient[Any, Any]) -> None:
    peer = WeComPeer()
    texts = ["你好", "人工", "订单号 20261123 的发票开好了吗", "谢谢，收到了 👍", "我要投诉你们"]
    expected_replies = {"你好": sample_reply("问候"), "人工": sample_reply("转人工")}
    replies = 0
    for i in range(200):
        content = texts[i % len(texts)]
        inner = text_xml(content, 10_000 + i, from_user=f"user{i % 17}")
        deliveries = 2 if i % 10 == 0 else 1  # every tenth is retried by "WeCom" too
        for attempt in range(deliveries):
            body, query = peer.seal(inner)
            resp = await client.post(PATH, params=query, data=body)
            assert resp.status == 200
            answer = await resp.read()
            if attempt == 0 and content in expected_replies:
                reply = peer.open_reply(answer)
                assert reply["Content"] == expected_replies[content]
                assert reply["ToUserName"] == f"user{i % 17}"
                assert reply["MsgType"] == "text"
                replies += 1
            elif attempt == 0:
                assert answer == b""
            else:
                assert answer == b""  # a retry is acknowledged, not handled twice
    assert replies == 80
    archive = client.app[ARCHIVE]
    assert await archive.count() == 200
    complaint = await archive.get("msg:10004")  # "我要投诉你们"
    assert complaint is not None and complaint.rules_version
    hits = await archive.hits_of(complaint.id or 0)
    assert [(h.word, complaint.content[h.span_start : h.span_end]) for h in hits] == [
        ("投诉", "投诉")
    ]
