"""Staff chats from the conversation archive, end to end on the fake source (design.md §3): the
real RSA step and key versions, the app's whole stack (rules, alerts, archive, review web), the
emulator for WeCom's HTTP API. Runs on the embedded set-up (SQLite, no Redis) and the shared one
(PostgreSQL + Redis)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select, update

from bot.config import Config
from bot.msgaudit.puller import MsgauditPuller
from bot.web.app import create_app
from bot.web.keys import MSGAUDIT_PULLER, WRITER
from monitor.archive.models import MessageRecord
from monitor.archive.msgaudit_models import MsgauditCursorRecord
from tests.support.app import CORP_ID, make_config
from tests.support.callbacks import post_inner, wait_calls
from tests.support.msgaudit import CUSTOMER, STAFF, make_feed, msgaudit_toml
from tests.support.review import add_reviewer, login
from wecom_sdk.errors import ArchiveError
from wecom_sdk.testing.archive_feed import ArchiveFeed
from wecom_sdk.testing.fake_api import FakeWeCom
from wecom_sdk.xmlsafe import render_xml

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
ServerFactory = Callable[..., Awaitable[TestServer]]
SECRET = "app-secret-for-tests"
PASSWORD = "correct horse battery"


class Env:
    """The app under test, its fake WeCom and the archive feed."""

    def __init__(self, client: TestClient[Any, Any], wecom: FakeWeCom, feed: ArchiveFeed) -> None:
        self.client, self.wecom, self.feed = client, wecom, feed

    @property
    def puller(self) -> MsgauditPuller:
        return self.client.app[MSGAUDIT_PULLER]

    async def count(self, query: Any) -> int:
        return int(await self.client.app[WRITER].run(lambda conn: conn.execute(query).scalar_one()))

    async def archived(self) -> int:
        m = MessageRecord.__table__.c
        return await self.count(select(func.count()).where(m.channel == "msgaudit"))

    async def seq(self) -> int:
        c = MsgauditCursorRecord.__table__.c
        return await self.count(select(c.seq))


async def _env(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    aiohttp_client: ClientFactory,
    aiohttp_server: ServerFactory,
    **toml: Any,
) -> Env:
    wecom = FakeWeCom(corp_id=CORP_ID, secret=SECRET)
    wecom.add_member(STAFF, "张三")
    wecom.add_external_contact(CUSTOMER, "王小明", follow_users=[STAFF])
    server = await aiohttp_server(wecom.app)
    feed = make_feed(tmp_path / "archive", *toml.pop("key_versions", (1,)))
    shared: dict[str, str] = {}
    if request.param == "shared":
        shared = {
            "redis_url": request.getfixturevalue("redis_url"),
            "redis_prefix": request.getfixturevalue("redis_prefix"),
        }
        url = request.getfixturevalue("pg_schema_url")
    else:
        url = request.getfixturevalue("sqlite_url")
    extra = '[alerts]\nmanagers = ["mgr1"]\n' + msgaudit_toml(feed, **toml)
    config: Config = make_config(
        tmp_path,
        url,
        secret=SECRET,
        api_base=str(server.make_url("/cgi-bin/")),
        extra=extra,
        **shared,
    )
    client = await aiohttp_client(create_app(config))
    await client.app[MSGAUDIT_PULLER].idle()  # the start-up pass (nothing to pull yet)
    return Env(client, wecom, feed)


@pytest.fixture(params=["embedded", "shared"])
async def env(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    aiohttp_client: ClientFactory,
    aiohttp_server: ServerFactory,
) -> Env:
    return await _env(request, tmp_path, aiohttp_client, aiohttp_server)


async def test_a_staff_request_for_a_red_packet_alerts_and_shows_in_the_review_page(
    env: Env,
) -> None:
    feed = env.feed
    feed.append(
        [
            feed.text(CUSTOMER, [STAFF], "你好，我想问一下退货的事"),
            feed.text(STAFF, [CUSTOMER], "可以的，不过你先发个红包给我，我帮你加急处理"),
        ]
    )
    report = await env.puller.pull_once()
    assert (report.entries, report.archived, report.quarantined) == (2, 2, 0)
    calls = await wait_calls(env.wecom, "message/send", 1)
    card = calls[-1].body["template_card"]
    fields = {f["keyname"]: f["value"] for f in card["horizontal_content_list"]}
    assert fields["员工"] == f"张三（{STAFF}）"  # named through user/get
    assert fields["客户"] == f"王小明（{CUSTOMER}）"  # named through externalcontact/get
    assert "红包" in card["sub_title_text"]
    link = urlsplit(card["card_action"]["url"]).path
    assert link == f"/review/conversations/ma%3A{STAFF}%3A{CUSTOMER}"

    await add_reviewer(env.client.app[WRITER], "li", PASSWORD)
    await login(env.client, "li", PASSWORD)
    resp = await env.client.get(link)
    body = await resp.text()
    assert resp.status == 200
    assert re.search(r"<mark[^>]*>红包</mark>", body)
    assert "<dd>张三（zhangsan）</dd>" in body  # the case names the staff member
    queue = await (await env.client.get("/review/")).text()
    assert "张三（zhangsan）" in queue and CUSTOMER in queue
    assert "退货的事" in body  # the customer's message is context of the thread


async def test_a_pull_archives_pages_once_and_an_empty_page_keeps_the_cursor(env: Env) -> None:
    feed = env.feed
    feed.append([feed.text(STAFF, [f"wmC{i:04d}"], f"第{i}条消息") for i in range(2500)])
    report = await env.puller.pull_once()
    assert (report.pages, report.entries, report.archived) == (3, 2500, 2500)
    assert await env.archived() == 2500 and await env.seq() == 2500

    # Nothing new: WeCom answers an empty page; the cursor stays (never back to 0).
    again = await env.puller.pull_once()
    assert (again.pages, again.entries) == (0, 0)
    assert await env.seq() == 2500
    # Even a source that answers nothing at all (a file emptied) does not move it back.
    feed.path.write_text("")
    await env.puller.pull_once()
    assert await env.seq() == 2500 and await env.archived() == 2500


async def test_transient_sdk_errors_are_retried_with_backoff(env: Env) -> None:
    feed = env.feed
    feed.append([feed.text(STAFF, [CUSTOMER], "稍等，我查一下")])
    env.puller.source.fail_next("get_chat_data", 10001, times=2)  # type: ignore[attr-defined]
    env.puller.backoff_s = 0.01
    report = await env.puller.pull_once()
    assert report.archived == 1


@pytest.fixture(params=["embedded"])
async def rotating(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    aiohttp_client: ClientFactory,
    aiohttp_server: ServerFactory,
) -> Env:
    return await _env(request, tmp_path, aiohttp_client, aiohttp_server, key_versions=(1, 2))


async def test_key_rotation_mid_stream(rotating: Env) -> None:
    feed = rotating.feed
    feed.append([feed.text(STAFF, [CUSTOMER], f"旧密钥 {i}") for i in range(5)], version=1)
    feed.append([feed.text(STAFF, [CUSTOMER], f"新密钥 {i}") for i in range(5)], version=2)
    feed.append([feed.text(CUSTOMER, [STAFF], "旧版本客户端 1")], version=1)
    report = await rotating.puller.pull_once()
    assert (report.archived, report.quarantined) == (11, 0)


async def test_a_recalled_hit_stays_visible_and_group_chats_are_their_own_conversation(
    env: Env,
) -> None:
    feed = env.feed
    ask = feed.text(STAFF, [CUSTOMER], "私下转账给我，给你便宜点")
    feed.append(
        [
            ask,
            feed.message("revoke", STAFF, [CUSTOMER], {"pre_msgid": ask["msgid"]}, action="recall"),
            feed.text(CUSTOMER, [STAFF, "lisi"], "群里的人都在吗", roomid="wrGROUP01"),
            feed.message("agree", CUSTOMER, [], {"userid": CUSTOMER, "agree_time": 1}),
        ]
    )
    report = await env.puller.pull_once()
    assert (report.archived, report.quarantined) == (4, 0)
    await add_reviewer(env.client.app[WRITER], "li", PASSWORD)
    await login(env.client, "li", PASSWORD)
    body = await (await env.client.get(f"/review/conversations/ma%3A{STAFF}%3A{CUSTOMER}")).text()
    assert "已撤回（原文保留）" in body and "</mark>给我，给你便宜点" in body
    assert "撤回了一条消息" in body  # the recall itself, in words
    group = await env.client.get("/review/conversations/ma%3Aroom%3AwrGROUP01")
    assert group.status == 200 and "群里的人都在吗" in await group.text()


async def test_an_image_is_downloaded_verified_and_shown_inline(env: Env) -> None:
    feed = env.feed
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3000  # > 512 KB: two chunks
    feed.append([feed.image(STAFF, [CUSTOMER], png)])
    report = await env.puller.pull_once()
    assert report.archived == 1
    await add_reviewer(env.client.app[WRITER], "li", PASSWORD)
    await login(env.client, "li", PASSWORD)
    path = f"/review/conversations/ma%3A{STAFF}%3A{CUSTOMER}"
    for _ in range(200):  # the download runs after the pull, in the background
        body = await (await env.client.get(path)).text()
        if "<img" in body:
            break
        await asyncio.sleep(0.05)
    found = re.search(r'<img[^>]*src="([^"]+)"', body)
    assert found is not None, body
    image = await env.client.get(found.group(1))
    assert image.status == 200 and image.content_type == "image/png"
    assert await image.read() == png
    assert len(env.puller.source.calls_to("get_media_data")) == 2  # type: ignore[attr-defined]


async def test_msgaudit_notify_callback_pulls(env: Env) -> None:
    feed = env.feed
    feed.append([feed.text(CUSTOMER, [STAFF], "在吗")])
    inner = render_xml(
        {
            "ToUserName": CORP_ID,
            "FromUserName": "sys",
            "CreateTime": int(time.time()),
            "MsgType": "event",
            "AgentID": 2000004,
            "Event": "msgaudit_notify",
        }
    )
    assert await post_inner(env.client, inner) == 200
    for _ in range(200):
        if await env.archived() == 2:  # the notice itself is archived too (channel app)
            break
        await env.puller.idle()
        await asyncio.sleep(0.02)
    assert await env.archived() == 1 and await env.seq() == 1


async def test_the_operators_hear_when_the_pull_falls_behind(env: Env) -> None:
    feed = env.feed
    old = int((time.time() - 30 * 3600) * 1000)
    feed.append([feed.text(CUSTOMER, [STAFF], "昨天的消息", msgtime=old)])
    await env.puller.pull_once()  # caught up: a quiet day is not "behind"
    assert not [c for c in env.wecom.calls_to("message/send") if "text" in c.body]
    # The pull keeps failing for 30 hours (simulated by ageing the caught-up mark).
    await env.client.app[WRITER].run(
        lambda conn: conn.execute(
            update(MsgauditCursorRecord.__table__).values(
                caught_up_at=datetime.fromtimestamp(old / 1000, UTC)
            )
        )
    )
    env.puller.source.fail_next("get_chat_data", 10009, times=1)  # type: ignore[attr-defined]
    with pytest.raises(ArchiveError):
        await env.puller.pull_once()
    texts = [
        c.body["text"]["content"] for c in env.wecom.calls_to("message/send") if "text" in c.body
    ]
    assert len(texts) == 1 and "已落后 30.0 小时" in texts[0]
    assert env.wecom.calls_to("message/send")[-1].body["touser"] == "mgr1"
    await env.puller.pull_once()  # still behind: no second message within a day
    await env.puller.pull_once()
    sent = [c for c in env.wecom.calls_to("message/send") if "text" in c.body]
    assert len(sent) == 2 and "已追平" in sent[-1].body["text"]["content"]
