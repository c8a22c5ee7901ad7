"""End to end through the aiohttp app: correctly sealed POSTs, dedupe, durable ack, and every bad input
getting its stated 4xx while the server stays healthy. Runs on SQLite + in-process dedupe and on
PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import base64
import struct
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from Crypto.Cipher import AES
from Crypto.Util.Padding import pad
from sqlalchemy import text

from bot.handlers.filters import Keyword
from bot.handlers.router import Router
from bot.inbound.context import Context
from bot.web.app import create_app
from bot.web.keys import ARCHIVE, CRYPTO, RULES
from monitor.archive import create_schema, make_engine
from tests.support.app import (
    AES_KEY,
    CORP_ID,
    TOKEN,
    make_config,
    sample_reply,
    sealed_post,
    text_xml,
)
from wecom_sdk.crypto import MsgCrypto
from wecom_sdk.messages.callback import Message, TextMessage, parse
from wecom_sdk.xmlsafe import parse_xml

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
PATH = "/wecom/callback"


@pytest.fixture(params=["embedded", "shared"])
def app_config(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """SQLite + in-process dedupe, and PostgreSQL + real Redis."""
    if request.param == "embedded":
        return make_config(tmp_path, request.getfixturevalue("sqlite_url"))
    return make_config(
        tmp_path,
        request.getfixturevalue("pg_schema_url"),
        redis_url=request.getfixturevalue("redis_url"),
        redis_prefix=request.getfixturevalue("redis_prefix"),
    )


@pytest.fixture
async def client(aiohttp_client: ClientFactory, app_config) -> TestClient[Any, Any]:  # type: ignore[no-untyped-def]
    return await aiohttp_client(create_app(app_config))


def crypto() -> MsgCrypto:
    return MsgCrypto(TOKEN, AES_KEY, CORP_ID)


def open_reply(body: bytes) -> Message:
    env = parse_xml(body)
    plain = crypto().open(
        str(env["MsgSignature"]), str(env["TimeStamp"]), str(env["Nonce"]), str(env["Encrypt"])
    )
    return parse(plain)


async def post(
    client: TestClient[Any, Any], body: bytes, query: dict[str, str]
) -> tuple[int, bytes]:
    resp = await client.post(PATH, params=query, data=body)
    return resp.status, await resp.read()


async def archived(client: TestClient[Any, Any], key: str) -> Any:
    return await client.app[ARCHIVE].get(key)


async def test_url_verification_with_published_sample(client: TestClient[Any, Any]) -> None:
    # WeCom doc 90968's sample from 2014: GET is exempt from the timestamp window.
    resp = await client.get(
        PATH + "?msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589"
        "&nonce=263014780&echostr=P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp"
        "%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D"
    )
    assert resp.status == 200
    assert await resp.read() == b"1616140317555161061"  # bare: no quotes, BOM or newline
    assert resp.content_type == "text/plain"


async def test_url_verification_rejects(client: TestClient[Any, Any]) -> None:
    bad = await client.get(
        PATH + "?msg_signature=0000000000000000000000000000000000000000&timestamp=1409659589"
        "&nonce=263014780&echostr=P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp"
        "%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D"
    )
    assert bad.status == 403
    missing = await client.get(PATH + "?timestamp=1&nonce=2")
    assert missing.status == 400


async def test_text_with_reply_is_stored_then_answered(client: TestClient[Any, Any]) -> None:
    body, query = sealed_post(crypto(), text_xml("你好", 7001))
    status, answer = await post(client, body, query)
    assert status == 200
    reply = open_reply(answer)
    assert isinstance(reply, TextMessage)
    assert reply.content == sample_reply("问候")
    assert reply.to_user == "zhangsan"
    assert reply.from_user == CORP_ID
    row = await archived(client, "msg:7001")
    assert row is not None
    assert row.content == "你好"
    assert row.from_user == "zhangsan"
    assert "<Content><![CDATA[你好]]></Content>" in row.raw


async def test_no_reply_is_empty_200(client: TestClient[Any, Any]) -> None:
    body, query = sealed_post(crypto(), text_xml("订单什么时候到？😀", 7002))
    status, answer = await post(client, body, query)
    assert (status, answer) == (200, b"")
    assert (await archived(client, "msg:7002")).content == "订单什么时候到？😀"


async def test_retries_are_dropped_and_stored_once(client: TestClient[Any, Any]) -> None:
    inner = text_xml("你好", 7003)
    for _ in range(4):  # the first delivery and WeCom's 3 retries, each freshly sealed
        body, query = sealed_post(crypto(), inner)
        status, _ = await post(client, body, query)
        assert status == 200
    assert await client.app[ARCHIVE].count() == 1
    metrics = await (await client.get("/metrics")).text()
    assert "sentinel_dedupe_hits_total 3.0" in metrics


async def test_events_dedupe_on_whole_xml(client: TestClient[Any, Any]) -> None:
    # Two distinct events from one user in one second: WeCom's suggested key would merge them.
    def event(key: str) -> bytes:
        return (
            f"<xml><ToUserName>{CORP_ID}</ToUserName><FromUserName>zhangsan</FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType>event</MsgType>"
            f"<Event>click</Event><EventKey>{key}</EventKey><AgentID>1000002</AgentID></xml>"
        ).encode()

    for inner in (event("a"), event("b"), event("a")):
        status, _ = await post(client, *sealed_post(crypto(), inner))
        assert status == 200
    assert await client.app[ARCHIVE].count() == 2


def raw_encrypt(plain: bytes, *, pad_to: int = 32, tamper_pad: int | None = None) -> str:
    key = base64.b64decode(AES_KEY + "=")
    padded = pad(plain, pad_to)
    if tamper_pad is not None:
        padded = padded[:-1] + bytes([tamper_pad])
    return base64.b64encode(AES.new(key, AES.MODE_CBC, key[:16]).encrypt(padded)).decode()


def envelope(encrypt: str) -> tuple[bytes, dict[str, str]]:
    ts, nonce = str(int(time.time())), "12345"
    sig = crypto().sign(ts, nonce, encrypt)
    body = (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]>"
        "</Encrypt></xml>"
    ).encode()
    return body, {"msg_signature": sig, "timestamp": ts, "nonce": nonce}


def framed(msg: bytes, receive_id: bytes = CORP_ID.encode()) -> bytes:
    return b"r" * 16 + struct.pack(">I", len(msg)) + msg + receive_id


BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    b"<xml><Encrypt>&lol2;</Encrypt></xml>"
)
EXTERNAL = (
    b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>'
)


def bad_inputs() -> list[tuple[str, int, Callable[[], tuple[bytes, dict[str, str]]]]]:
    good_body, good_query = sealed_post(crypto(), text_xml("x", 1))

    def with_query(**changes: str) -> tuple[bytes, dict[str, str]]:
        return good_body, {**good_query, **changes}

    stale_ts = str(int(time.time()) - 3600)

    def signed_with_timestamp(ts: str) -> tuple[bytes, dict[str, str]]:
        encrypt = str(parse_xml(good_body)["Encrypt"])
        sig = crypto().sign(ts, good_query["nonce"], encrypt)
        return good_body, {**good_query, "timestamp": ts, "msg_signature": sig}

    other_corp = MsgCrypto(TOKEN, AES_KEY, "ww0000000000000000")
    return [
        ("bad signature", 403, lambda: with_query(msg_signature="f" * 40)),
        ("missing signature", 400, lambda: (good_body, {"timestamp": "1", "nonce": "2"})),
        (
            "stale timestamp",
            403,
            lambda: sealed_post(crypto(), text_xml("x", 2), timestamp=stale_ts),
        ),
        ("non-numeric timestamp", 403, lambda: signed_with_timestamp("abc")),
        ("too large", 413, lambda: (b"<xml>" + b"a" * 70_000 + b"</xml>", good_query)),
        ("not XML", 400, lambda: (b"hello", good_query)),
        ("DTD entity bomb", 400, lambda: (BOMB, good_query)),
        ("external entity", 400, lambda: (EXTERNAL, good_query)),
        ("no Encrypt", 400, lambda: (b"<xml><ToUserName>x</ToUserName></xml>", good_query)),
        ("not base64", 400, lambda: envelope("!!!notbase64!!!")),
        ("not a block multiple", 400, lambda: envelope(base64.b64encode(b"x" * 40).decode())),
        (
            "wrong padding value",
            400,
            lambda: envelope(raw_encrypt(framed(b"<xml/>"), tamper_pad=0)),
        ),
        ("padding over 32", 400, lambda: envelope(raw_encrypt(framed(b"<xml/>"), tamper_pad=40))),
        (
            "length field too long",
            400,
            lambda: envelope(
                raw_encrypt(b"r" * 16 + struct.pack(">I", 10_000) + b"<xml/>" + CORP_ID.encode())
            ),
        ),
        ("another corp", 403, lambda: sealed_post(other_corp, text_xml("x", 4))),
        ("inner not XML", 400, lambda: sealed_post(crypto(), b"just text")),
        ("inner DTD", 400, lambda: sealed_post(crypto(), BOMB)),
        (
            "inner without MsgType",
            400,
            lambda: sealed_post(crypto(), b"<xml><Content>x</Content></xml>"),
        ),
    ]


@pytest.mark.parametrize(("name", "status", "make"), bad_inputs(), ids=[b[0] for b in bad_inputs()])
async def test_bad_input_gets_4xx_and_server_stays_healthy(
    client: TestClient[Any, Any],
    name: str,
    status: int,
    make: Callable[[], tuple[bytes, dict[str, str]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    body, query = make()
    got, _ = await post(client, body, query)
    assert got == status, name
    rejected = [
        r for r in caplog.records if r.name == "sentinel.callback" and "rejected" in r.message
    ]
    assert len(rejected) == 1  # logged once
    assert AES_KEY not in caplog.text
    assert (await client.get("/healthz")).status == 200
    ok_body, ok_query = sealed_post(crypto(), text_xml("之后的正常消息", 8000))
    assert (await post(client, ok_body, ok_query))[0] == 200
    assert await client.app[ARCHIVE].count() == 1  # nothing bad was stored
    assert "之后的正常消息" not in caplog.text  # chat text is never logged above DEBUG


async def test_storage_failure_is_503_and_retry_then_succeeds(
    client: TestClient[Any, Any],
    app_config,  # type: ignore[no-untyped-def]
) -> None:
    engine = make_engine(app_config.storage.database_url)
    try:
        with engine.begin() as conn:
            for table in ("alert_message", "hit", "message"):  # dependants first
                conn.execute(text(f"DROP TABLE {table}"))
        inner = text_xml("我要维权", 7100)
        status, _ = await post(client, *sealed_post(crypto(), inner))
        assert status == 503
        create_schema(engine)  # storage is back
        status, _ = await post(client, *sealed_post(crypto(), inner))  # WeCom's retry
        assert status == 200, "a failed store must not leave the dedupe key behind"
        assert (await archived(client, "msg:7100")) is not None
    finally:
        engine.dispose()


async def test_failing_handler_still_stores_and_acks(
    aiohttp_client: ClientFactory, tmp_path: Path, sqlite_url: str
) -> None:
    router = Router("broken")

    @router.text(Keyword("boom"))
    async def boom(msg: Message, ctx: Context) -> str:
        raise RuntimeError("handler bug")

    client = await aiohttp_client(create_app(make_config(tmp_path, sqlite_url), router=router))
    status, answer = await post(client, *sealed_post(crypto(), text_xml("boom", 7200)))
    assert (status, answer) == (200, b"")
    assert await archived(client, "msg:7200") is not None


async def test_healthz_and_metrics(client: TestClient[Any, Any], app_config) -> None:  # type: ignore[no-untyped-def]
    health = await client.get("/healthz")
    assert health.status == 200
    data = await health.json()
    assert data["status"] == "ok"
    assert data["storage"] == "ok"
    assert data["redis"] == ("ok" if app_config.storage.redis_url else "disabled")
    storage, redis = data["dependencies"]["storage"], data["dependencies"]["redis"]
    assert storage["ok"] is True and storage["since"]
    assert redis["ok"] is True and redis["enabled"] is bool(app_config.storage.redis_url)
    assert data["rules_version"] == client.app[RULES].version
    await post(client, *sealed_post(crypto(), text_xml("你好", 7300)))
    await post(client, b"junk", {"msg_signature": "x", "timestamp": "1", "nonce": "1"})
    metrics = await (await client.get("/metrics")).text()
    assert 'sentinel_callbacks_total{method="POST",outcome="replied"} 1.0' in metrics
    assert 'outcome="rejected_400"' in metrics
    assert "sentinel_callback_seconds_bucket" in metrics
    assert "sentinel_storage_commit_seconds_count" in metrics


async def test_healthz_degraded_not_503_when_redis_down(
    aiohttp_client: ClientFactory, tmp_path: Path, sqlite_url: str
) -> None:
    from tests.support.app import free_port

    config = make_config(tmp_path, sqlite_url, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = await aiohttp_client(create_app(config))
    health = await client.get("/healthz")
    assert health.status == 200  # messages can still be stored
    data = await health.json()
    assert data["status"] == "degraded" and data["redis"] == "unavailable"
    redis = data["dependencies"]["redis"]
    assert redis["ok"] is False and redis["since"] and "ConnectionError" in redis["error"]
    # Intake still works without Redis: the archive's unique key keeps it idempotent.
    status, _ = await post(client, *sealed_post(crypto(), text_xml("你好", 7400)))
    assert status == 200


async def test_frozen_clock_window(
    aiohttp_client: ClientFactory, tmp_path: Path, sqlite_url: str
) -> None:
    config = make_config(tmp_path, sqlite_url)
    client = await aiohttp_client(create_app(config, clock=lambda: 1_700_000_000.0))
    inner = text_xml("你好", 7500, create_time=1_700_000_000)
    ok = sealed_post(crypto(), inner, timestamp="1700000290")
    assert (await post(client, *ok))[0] == 200
    late = sealed_post(crypto(), text_xml("你好", 7501), timestamp="1700000301")
    assert (await post(client, *late))[0] == 403
    assert client.app[CRYPTO] is not None


async def test_hits_are_stored_with_the_message_and_rules_version(
    client: TestClient[Any, Any],
) -> None:
    text_ = "我要维 权，不行就打１２３１５"
    status, answer = await post(client, *sealed_post(crypto(), text_xml(text_, 7600)))
    assert (status, answer) == (200, b"")
    archive = client.app[ARCHIVE]
    row = await archive.get("msg:7600")
    assert row is not None and row.rules_version
    hits = await archive.hits_of(row.id or 0)
    assert [(h.word, text_[h.span_start : h.span_end], h.severity) for h in hits] == [
        ("维权", "维 权", 3),
        ("12315", "１２３１５", 3),
    ]
    assert {h.rules_version for h in hits} == {row.rules_version}


async def test_reload_under_load_loses_nothing_and_never_mixes_versions(
    aiohttp_client: ClientFactory, tmp_path: Path, sqlite_url: str
) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    rule_file = rules_dir / "r.toml"
    versions = [
        '[[group]]\nname = "甲"\nseverity = "high"\nwords = ["维权"]\n',
        '[[group]]\nname = "乙"\nseverity = "low"\nwords = ["维权", "投诉"]\n',
    ]
    rule_file.write_text(versions[0], encoding="utf-8")
    config = make_config(
        tmp_path,
        sqlite_url,
        extra=f'[rules]\npaths = ["{rules_dir}"]\nreload_interval_s = 3600.0\n',
    )
    client = await aiohttp_client(create_app(config))
    engine = client.app[RULES]
    expected_groups: dict[str, tuple[str, int]] = {}  # version -> (group, hits per message)
    expected_groups[engine.version] = ("甲", 1)

    stop = asyncio.Event()

    async def reloader() -> None:
        turn = 1
        while not stop.is_set():
            rule_file.write_text(versions[turn % 2], encoding="utf-8")
            await asyncio.to_thread(engine.reload)
            expected_groups[engine.version] = ("乙", 2) if turn % 2 else ("甲", 1)
            turn += 1
            await asyncio.sleep(0.01)

    async def sender(first: int) -> None:
        for msg_id in range(first, first + 40):
            status, _ = await post(
                client, *sealed_post(crypto(), text_xml("我要维权还要投诉", msg_id))
            )
            assert status == 200

    task = asyncio.create_task(reloader())
    await asyncio.gather(*(sender(20_000 + 100 * i) for i in range(5)))
    stop.set()
    await task
    archive = client.app[ARCHIVE]
    assert await archive.count() == 200
    seen_versions = set()
    for i in range(5):
        for msg_id in range(20_000 + 100 * i, 20_000 + 100 * i + 40):
            row = await archive.get(f"msg:{msg_id}")
            assert row is not None and row.rules_version in expected_groups
            hits = await archive.hits_of(row.id or 0)
            group, count = expected_groups[row.rules_version]
            assert {h.rules_version for h in hits} == {row.rules_version}
            assert {h.rule_group for h in hits} == {group} and len(hits) == count
            seen_versions.add(row.rules_version)
    assert len(seen_versions) == 2  # the reloads really happened while messages flowed


async def test_a_failing_rules_engine_never_loses_the_message(
    aiohttp_client: ClientFactory, tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = await aiohttp_client(create_app(make_config(tmp_path, sqlite_url)))
    engine = client.app[RULES]

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("bug in a rule")

    engine.inspect = broken  # type: ignore[method-assign]  # a rules bug, injected
    status, answer = await post(client, *sealed_post(crypto(), text_xml("我要维权", 7700)))
    assert (status, answer) == (200, b"")
    row = await client.app[ARCHIVE].get("msg:7700")
    assert row is not None and row.content == "我要维权" and row.rules_version is None
    assert "rules inspection failed" in caplog.text


async def test_an_unexpected_bug_is_a_503_not_a_500_and_the_retry_goes_through(
    aiohttp_client: ClientFactory, tmp_path: Path, sqlite_url: str
) -> None:
    client = await aiohttp_client(create_app(make_config(tmp_path, sqlite_url)))
    archive = client.app[ARCHIVE]
    real_store = archive.store_inbound

    async def buggy(*args: object, **kwargs: object) -> object:
        raise KeyError("a bug")

    archive.store_inbound = buggy  # type: ignore[method-assign]  # a bug of ours, injected
    inner = text_xml("我要投诉", 7800)
    assert (await post(client, *sealed_post(crypto(), inner)))[0] == 503
    archive.store_inbound = real_store  # type: ignore[method-assign]  # the fixed deployment
    assert (await post(client, *sealed_post(crypto(), inner)))[0] == 200
    assert await archive.get("msg:7800") is not None
