"""Edges of the callback route that mutation testing found unguarded (``bot/inbound/callback.py``).

The body limit at its exact bound and for chunked bodies, the passive reply's envelope (nonce,
content type), the conversation an app message is archived under, and the metrics an operator
reads (exact labels, a latency that is a duration). Through the aiohttp app on SQLite.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import text

from bot.config import load_config
from bot.web.app import create_app
from bot.web.keys import ARCHIVE
from monitor.archive import make_engine
from tests.support.app import (
    AES_KEY,
    AGENT_ID,
    CORP_ID,
    TOKEN,
    free_port,
    make_config,
    sealed_post,
    text_xml,
    write_config,
)
from wecom_sdk.crypto import MsgCrypto
from wecom_sdk.xmlsafe import parse_xml, render_xml

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
PATH = "/wecom/callback"


def crypto() -> MsgCrypto:
    return MsgCrypto(TOKEN, AES_KEY, CORP_ID)


async def app_client(
    aiohttp_client: ClientFactory, tmp_path: Path, sqlite_url: str, *, max_body: int = 0
) -> TestClient[Any, Any]:
    path = write_config(tmp_path, sqlite_url)
    if max_body:
        server = f"[server]\nmax_body_bytes = {max_body}\n"
        path.write_text(path.read_text("utf-8").replace("[server]\n", server), "utf-8")
    return await aiohttp_client(create_app(load_config(path, {})))


async def test_a_body_of_exactly_max_body_bytes_is_accepted(
    aiohttp_client: ClientFactory, tmp_path: Path, sqlite_url: str
) -> None:
    body, query = sealed_post(crypto(), text_xml("订单" * 200, 6001))
    assert len(body) >= 1024  # the smallest limit the config allows
    client = await app_client(aiohttp_client, tmp_path, sqlite_url, max_body=len(body))
    assert (await client.post(PATH, params=query, data=body)).status == 200
    bigger, query = sealed_post(crypto(), text_xml("订单" * 210, 6002))
    assert len(bigger) > len(body)
    assert (await client.post(PATH, params=query, data=bigger)).status == 413


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 256):
        yield body[start : start + 256]


async def test_chunked_bodies_without_a_length_are_read_and_bounded(
    aiohttp_client: ClientFactory, tmp_path: Path, sqlite_url: str
) -> None:
    client = await app_client(aiohttp_client, tmp_path, sqlite_url, max_body=2048)
    body, query = sealed_post(crypto(), text_xml("你好", 6101))
    resp = await client.post(PATH, params=query, data=_chunks(body))
    assert resp.status == 200  # no Content-Length: read up to the limit
    huge, query = sealed_post(crypto(), text_xml("订单" * 1000, 6102))
    resp = await client.post(PATH, params=query, data=_chunks(huge))
    assert resp.status == 413
    assert await client.app[ARCHIVE].count() == 1


async def test_the_passive_reply_is_sealed_with_the_callbacks_nonce_as_xml(
    aiohttp_client: ClientFactory, tmp_path: Path, sqlite_url: str
) -> None:
    client = await aiohttp_client(create_app(make_config(tmp_path, sqlite_url)))
    body, query = sealed_post(crypto(), text_xml("你好", 6201), nonce="n6201")
    resp = await client.post(PATH, params=query, data=body)
    assert resp.status == 200
    assert resp.content_type == "text/xml" and resp.charset == "utf-8"
    envelope = parse_xml(await resp.read())
    assert envelope["Nonce"] == "n6201"
    assert envelope["TimeStamp"] == query["timestamp"]


def _archived(url: str, key: str) -> Any:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                text(
                    "SELECT conversation_id, direction, agent_id, event, msg_type "
                    "FROM message WHERE dedupe_key = :key"
                ),
                {"key": key},
            ).one()
    finally:
        engine.dispose()


async def test_an_app_message_is_archived_with_its_conversation_and_agent(
    aiohttp_client: ClientFactory, tmp_path: Path, sqlite_url: str
) -> None:
    client = await aiohttp_client(create_app(make_config(tmp_path, sqlite_url)))
    body, query = sealed_post(crypto(), text_xml("你好", 6301, from_user="lisi"))
    assert (await client.post(PATH, params=query, data=body)).status == 200
    row = _archived(sqlite_url, "msg:6301")
    assert (row.conversation_id, row.direction) == ("app:lisi", "member")
    assert str(row.agent_id) == AGENT_ID and row.msg_type == "text" and row.event is None


async def test_an_event_is_archived_with_its_event_name(
    aiohttp_client: ClientFactory, tmp_path: Path, sqlite_url: str
) -> None:
    client = await aiohttp_client(create_app(make_config(tmp_path, sqlite_url)))
    inner = render_xml(
        {
            "ToUserName": CORP_ID,
            "FromUserName": "lisi",
            "CreateTime": 1_700_000_000,
            "MsgType": "event",
            "Event": "enter_agent",
            "EventKey": "",
            "AgentID": int(AGENT_ID),
        }
    )
    body, query = sealed_post(crypto(), inner)
    assert (await client.post(PATH, params=query, data=body)).status == 200
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            key = conn.execute(text("SELECT dedupe_key FROM message")).scalar_one()
    finally:
        engine.dispose()
    row = _archived(sqlite_url, key)
    assert (row.msg_type, row.event) == ("event", "enter_agent")


async def test_a_dedupe_store_outage_still_stores_the_message(
    aiohttp_client: ClientFactory, tmp_path: Path, sqlite_url: str
) -> None:
    """Redis unreachable: the retry check fails open and the archive's unique key dedupes."""
    config = make_config(tmp_path, sqlite_url, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = await aiohttp_client(create_app(config))
    body, query = sealed_post(crypto(), text_xml("你好", 6501))
    assert (await client.post(PATH, params=query, data=body)).status == 200
    assert await client.app[ARCHIVE].get("msg:6501") is not None
    body, query = sealed_post(crypto(), text_xml("你好", 6501))  # WeCom's retry
    assert (await client.post(PATH, params=query, data=body)).status == 200
    assert await client.app[ARCHIVE].count() == 1


def _sample(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


async def test_metrics_name_method_and_outcome_and_time_a_callback(
    aiohttp_client: ClientFactory, tmp_path: Path, sqlite_url: str
) -> None:
    client = await aiohttp_client(create_app(make_config(tmp_path, sqlite_url)))
    verify = (
        "?msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589"
        "&nonce=263014780&echostr=P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp"
        "%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D"
    )
    assert (await client.get(PATH + verify)).status == 200
    assert (await client.get(PATH + "?timestamp=1&nonce=2")).status == 400
    assert (await client.post(PATH, params={"timestamp": "1"}, data=b"x")).status == 400
    body, query = sealed_post(crypto(), text_xml("订单到哪了", 6401))
    assert (await client.post(PATH, params=query, data=body)).status == 200
    metrics = await (await client.get("/metrics")).text()
    labels = 'sentinel_callbacks_total{{method="{}",outcome="{}"}}'
    assert _sample(metrics, labels.format("GET", "verified")) == 1.0
    assert _sample(metrics, labels.format("GET", "rejected_400")) == 1.0
    assert _sample(metrics, labels.format("POST", "rejected_400")) == 1.0
    answered = [_sample(metrics, labels.format("POST", o)) for o in ("stored", "replied")]
    assert sum(answered) == 1.0
    count = _sample(metrics, 'sentinel_callback_seconds_count{method="POST"}')
    total = _sample(metrics, 'sentinel_callback_seconds_sum{method="POST"}')
    assert count == 2.0
    assert 0.0 < total < 10.0  # seconds spent, not a clock reading
