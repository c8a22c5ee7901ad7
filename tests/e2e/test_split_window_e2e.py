"""Issue 19: a word split over messages (维 / 权) in the live pipeline, end to end.

Sealed callbacks (and kf chat messages fed to the pipeline) go through the app with the fake
WeCom behind it, on SQLite + in-process state and on PostgreSQL + Redis: the message that
completes the word is archived with a ``split`` hit naming every piece, and the managers get ONE
card for the evasion. Innocent pairs of messages, pieces too far apart, pieces from two senders
and Redis going away do not make a split hit (the last still stores and answers every message).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.config import Config
from bot.inbound.chat import feed
from bot.inbound.chat_message import ChatMessage
from bot.web.app import create_app
from bot.web.keys import CONFIG, PIPELINE, WRITER
from monitor.archive.models import HitRecord, MessageRecord
from monitor.review.thread import ThreadMessage, load_thread
from rules.models import Audience
from tests.e2e.test_alerts_e2e import alerts_in_db, deliveries, outbox_settled, wait_calls
from tests.support.app import AES_KEY, CORP_ID, TOKEN, make_config, sealed_post, text_xml
from tests.support.redis_server import dedicated_redis
from wecom_sdk.crypto import MsgCrypto
from wecom_sdk.testing.fake_api import FakeWeCom

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
ServerFactory = Callable[..., Awaitable[TestServer]]
PATH = "/wecom/callback"
SECRET = "app-secret-for-tests"

RULES = """
[[group]]
name = "维权风险"
severity = "high"
audience = "any"
words = ["维权", "假货"]
"""


def _extra(tmp_path: Path, window: str = "") -> str:
    (tmp_path / "split_rules.toml").write_text(RULES, encoding="utf-8")
    return (
        '[alerts]\nmanagers = ["mgr1"]\n'
        f'[rules]\npaths = ["split_rules.toml"]\nsplit_window_messages = 3\n{window}'
    )


@pytest.fixture
async def fake(aiohttp_server: ServerFactory) -> tuple[FakeWeCom, str]:
    wecom = FakeWeCom(corp_id=CORP_ID, secret=SECRET)
    server = await aiohttp_server(wecom.app)
    return wecom, str(server.make_url("/cgi-bin/"))


def _config(
    request: pytest.FixtureRequest, tmp_path: Path, api_base: str, *, shared: bool
) -> Config:
    extra = _extra(tmp_path, "split_window_s = 120\n")
    if shared:
        return make_config(
            tmp_path,
            request.getfixturevalue("pg_schema_url"),
            secret=SECRET,
            api_base=api_base,
            extra=extra,
            redis_url=request.getfixturevalue("redis_url"),
            redis_prefix=request.getfixturevalue("redis_prefix"),
        )
    url = request.getfixturevalue("sqlite_url")
    return make_config(tmp_path, url, secret=SECRET, api_base=api_base, extra=extra)


@pytest.fixture(params=["embedded", "shared"])
async def env(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    aiohttp_client: ClientFactory,
    fake: tuple[FakeWeCom, str],
) -> tuple[TestClient[Any, Any], FakeWeCom]:
    wecom, api_base = fake
    config = _config(request, tmp_path, api_base, shared=request.param == "shared")
    return await aiohttp_client(create_app(config)), wecom


async def post(
    client: TestClient[Any, Any],
    text: str,
    msg_id: int,
    *,
    user: str = "zhangsan",
    at: int | None = None,
) -> None:
    inner = text_xml(text, msg_id, from_user=user, create_time=at or int(time.time()))
    body, query = sealed_post(MsgCrypto(TOKEN, AES_KEY, CORP_ID), inner)
    resp = await client.post(PATH, params=query, data=body)
    await resp.read()
    assert resp.status == 200


def hits_by_message(client: TestClient[Any, Any]) -> dict[str, list[Any]]:
    """``dedupe_key -> hit rows`` for every archived message."""
    engine = client.app[WRITER].engine
    with engine.connect() as conn:
        keys = {row.id: row.dedupe_key for row in conn.execute(select(MessageRecord.__table__))}
        found: dict[str, list[Any]] = {key: [] for key in keys.values()}
        for hit in conn.execute(select(HitRecord.__table__).order_by(HitRecord.__table__.c.id)):
            found[keys[hit.message_id]].append(hit)
    return found


async def settled_sends(client: TestClient[Any, Any], fake: FakeWeCom) -> int:
    await outbox_settled(client.app[WRITER].engine)
    return len(deliveries(fake, "message/send"))


async def test_a_word_split_over_two_messages_alerts_once_and_names_both_pieces(
    env: tuple[TestClient[Any, Any], FakeWeCom],
) -> None:
    client, fake = env
    now = int(time.time())
    await post(client, "维", 7001, at=now)
    await post(client, "权", 7002, at=now + 5)
    await post(client, "权", 7002, at=now + 5)  # WeCom's retry of the completing message
    await wait_calls(fake, "message/send", 1)
    assert await settled_sends(client, fake) == 1
    (alert,) = await alerts_in_db(client)
    assert alert.count == 1
    hits = await asyncio.to_thread(hits_by_message, client)
    assert hits["msg:7001"] == []
    (hit,) = hits["msg:7002"]
    assert (hit.word, hit.via, hit.span_start, hit.span_end) == ("维权", "split", 0, 1)
    assert json.loads(hit.parts) == [
        {"dedupe_key": "msg:7001", "start": 0, "end": 1},
        {"dedupe_key": "msg:7002", "start": 0, "end": 1},
    ]
    # The review page marks each piece in the message it was written in.
    with client.app[WRITER].engine.connect() as conn:
        thread = load_thread(conn, "app:zhangsan", context=10)
    marked = [
        [seg.text for seg in item.segments if seg.marked]
        for item in thread.items
        if isinstance(item, ThreadMessage)
    ]
    assert marked == [["维"], ["权"]]


async def test_the_pieces_may_sit_at_the_end_of_a_longer_message(
    env: tuple[TestClient[Any, Any], FakeWeCom],
) -> None:
    client, fake = env
    now = int(time.time())
    prefix = "你们这个东西质量太差了，" * 8  # longer than the window keeps of a message
    await post(client, prefix + "我要维", 7101, at=now)
    await post(client, "权", 7102, at=now + 2)
    await wait_calls(fake, "message/send", 1)
    (hit,) = (await asyncio.to_thread(hits_by_message, client))["msg:7102"]
    first, last = json.loads(hit.parts)
    start = len(prefix) + 2
    assert first == {"dedupe_key": "msg:7101", "start": start, "end": start + 1}
    assert last == {"dedupe_key": "msg:7102", "start": 0, "end": 1}


async def test_innocent_neighbours_make_no_word_but_an_evasive_piece_does(
    env: tuple[TestClient[Any, Any], FakeWeCom],
) -> None:
    client, fake = env
    now = int(time.time())
    await post(client, "今天放假", 7201, at=now)
    await post(client, "货到了吗", 7202, at=now + 3)
    hits = await asyncio.to_thread(hits_by_message, client)
    assert hits == {"msg:7201": [], "msg:7202": []}
    assert await settled_sends(client, fake) == 0
    await post(client, "今天放假", 7203, at=now + 6)
    await post(client, "货", 7204, at=now + 9)  # 放假 / 货: the last holds only its piece
    await wait_calls(fake, "message/send", 1)
    (hit,) = (await asyncio.to_thread(hits_by_message, client))["msg:7204"]
    assert (hit.word, hit.via) == ("假货", "split")
    assert json.loads(hit.parts)[0] == {"dedupe_key": "msg:7203", "start": 3, "end": 4}


async def test_pieces_further_apart_than_the_window_do_not_join(
    env: tuple[TestClient[Any, Any], FakeWeCom],
) -> None:
    client, fake = env
    now = int(time.time())
    await post(client, "维", 7301, at=now - 121)
    await post(client, "权", 7302, at=now)
    await post(client, "维", 7303, at=now + 60)
    hits = await asyncio.to_thread(hits_by_message, client)
    assert hits == {"msg:7301": [], "msg:7302": [], "msg:7303": []}
    await post(client, "权", 7304, at=now + 180)  # 120 s after 7303: still inside
    await wait_calls(fake, "message/send", 1)
    assert [h.via for h in (await asyncio.to_thread(hits_by_message, client))["msg:7304"]] == [
        "split"
    ]


async def test_pieces_from_two_senders_of_one_conversation_do_not_join(
    env: tuple[TestClient[Any, Any], FakeWeCom],
) -> None:
    client, fake = env
    app = client.app

    async def say(n: int, author: Audience, user: str, text: str) -> None:
        outcome = await feed(
            app[PIPELINE],
            app[CONFIG],
            ChatMessage(
                channel="kf",
                dedupe_key=f"kf:split-{n}",
                conversation_id="kf:wkAAA:wmCustomer1",
                author=author,
                from_user=user,
                customer_id="wmCustomer1",
                msg_type="text",
                text=text,
                raw="{}",
                create_time=int(time.time()),
                to_user="wkAAA",
            ),
        )
        assert outcome.stored

    await say(1, Audience.CUSTOMER, "wmCustomer1", "维")
    await say(2, Audience.STAFF, "servicer1", "权")
    hits = await asyncio.to_thread(hits_by_message, client)
    assert hits == {"kf:split-1": [], "kf:split-2": []}
    await say(3, Audience.CUSTOMER, "wmCustomer1", "权")  # the customer's own window: 维 / 权
    await wait_calls(fake, "message/send", 1)
    (hit,) = (await asyncio.to_thread(hits_by_message, client))["kf:split-3"]
    assert json.loads(hit.parts)[0]["dedupe_key"] == "kf:split-1"


async def test_different_app_members_do_not_join(
    env: tuple[TestClient[Any, Any], FakeWeCom],
) -> None:
    client, _fake = env
    await post(client, "维", 7401, user="zhangsan")
    await post(client, "权", 7402, user="lisi")
    hits = await asyncio.to_thread(hits_by_message, client)
    assert hits == {"msg:7401": [], "msg:7402": []}


async def test_turned_off_the_pieces_stay_apart(
    tmp_path: Path,
    sqlite_url: str,
    aiohttp_client: ClientFactory,
    fake: tuple[FakeWeCom, str],
) -> None:
    _wecom, api_base = fake
    extra = _extra(tmp_path, "split_window_s = 0\n")
    config = make_config(tmp_path, sqlite_url, secret=SECRET, api_base=api_base, extra=extra)
    client = await aiohttp_client(create_app(config))
    await post(client, "维", 7501)
    await post(client, "权", 7502)
    assert await asyncio.to_thread(hits_by_message, client) == {"msg:7501": [], "msg:7502": []}


async def test_redis_down_degrades_to_single_message_matching(
    tmp_path: Path,
    pg_schema_url: str,
    redis_prefix: str,
    aiohttp_client: ClientFactory,
    fake: tuple[FakeWeCom, str],
) -> None:
    wecom, api_base = fake
    with dedicated_redis(tmp_path) as server:
        config = make_config(
            tmp_path,
            pg_schema_url,
            secret=SECRET,
            api_base=api_base,
            extra=_extra(tmp_path, "split_window_s = 120\n"),
            redis_url=server.url,
            redis_prefix=redis_prefix,
        )
        client = await aiohttp_client(create_app(config))
        now = int(time.time())
        await post(client, "维", 7601, at=now)
        server.kill()  # connection refused from now on
        started = time.monotonic()
        await post(client, "权", 7602, at=now + 1)  # stored and answered, no split hit
        await post(client, "我要维权", 7603, at=now + 2)  # its own hit still counts
        assert time.monotonic() - started < 3.0
        hits = await asyncio.to_thread(hits_by_message, client)
        assert hits["msg:7601"] == [] and hits["msg:7602"] == []
        assert [(h.word, h.via) for h in hits["msg:7603"]] == [("维权", None)]
        await wait_calls(wecom, "message/send", 1)
