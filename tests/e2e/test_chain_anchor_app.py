"""The bot with ``[archive] anchor_chat`` set posts the chain heads to that chat as it starts (and
then daily), through the WeCom emulator, which records the call; without it, nothing is posted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from bot.web.app import create_app
from monitor.archive import make_engine
from monitor.archive.verify import verify_database
from tests.support.app import AES_KEY, CORP_ID, TOKEN, make_config, sealed_post, text_xml
from tests.support.waiting import until
from tests.unit.monitor.test_chain_anchor import CHAT
from wecom_sdk.crypto import MsgCrypto
from wecom_sdk.testing.fake_api import FakeWeCom

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
ServerFactory = Callable[..., Awaitable[TestServer]]
SECRET = "app-secret-for-tests"


async def start(
    tmp_path: Path,
    database_url: str,
    aiohttp_server: ServerFactory,
    aiohttp_client: ClientFactory,
    extra: str,
) -> tuple[TestClient[Any, Any], FakeWeCom]:
    fake = FakeWeCom(corp_id=CORP_ID, secret=SECRET, app_chats={CHAT})
    server = await aiohttp_server(fake.app)
    config = make_config(
        tmp_path,
        database_url,
        secret=SECRET,
        api_base=str(server.make_url("/cgi-bin/")),
        extra=extra,
    )
    return await aiohttp_client(create_app(config)), fake


async def test_the_bot_posts_the_heads_to_the_anchor_chat(
    tmp_path: Path,
    database_url: str,
    aiohttp_server: ServerFactory,
    aiohttp_client: ClientFactory,
) -> None:
    client, fake = await start(
        tmp_path, database_url, aiohttp_server, aiohttp_client, f'[archive]\nanchor_chat = "{CHAT}"'
    )
    body, query = sealed_post(MsgCrypto(TOKEN, AES_KEY, CORP_ID), text_xml("你好", msg_id=1001))
    assert (await client.post("/wecom/callback", params=query, data=body)).status == 200
    await until(lambda: fake.calls_to("appchat/send"), "the anchor post")
    [call] = fake.calls_to("appchat/send")
    assert call.body["chatid"] == CHAT
    lines = call.body["text"]["content"].splitlines()
    assert lines[0].startswith("wecom-sentinel hash chain heads, ")
    assert [line.split()[0] for line in lines[1:]] == ["archive", "audit"]
    engine = make_engine(database_url)

    def anchor_details() -> list[str]:
        with engine.connect() as conn:
            query = text("SELECT detail FROM audit_event WHERE action = 'anchor'")
            return list(conn.execute(query).scalars())

    try:  # the audit row commits right after WeCom's answer
        await until(anchor_details, "the anchor's audit row")
        [detail] = [json.loads(d) for d in anchor_details()]
        posted = {line.split()[0]: line.split()[1:] for line in lines[1:]}
        assert {
            chain: [str(h["seq"]), h["hash"]] for chain, h in detail.items() if chain != "day"
        } == (posted)
        assert [r.problem for r in verify_database(engine)] == [None, None]
    finally:
        engine.dispose()


async def test_no_anchor_chat_no_post(
    tmp_path: Path,
    database_url: str,
    aiohttp_server: ServerFactory,
    aiohttp_client: ClientFactory,
) -> None:
    client, fake = await start(tmp_path, database_url, aiohttp_server, aiohttp_client, "")
    assert (await client.get("/healthz")).status == 200
    await asyncio.sleep(0.2)
    assert fake.calls_to("appchat/send") == []
