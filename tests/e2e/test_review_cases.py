"""The review web end to end: a risky message raises a card; a reviewer follows its link, logs in,
sees the conversation with the hit marked, and works the case; WeCom's cards follow every action and
a manager's card click shows up in the case. One state, two surfaces.

Runs on the embedded set-up (SQLite, no Redis) and the shared one (PostgreSQL + Redis).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.config import Config
from bot.web.app import create_app
from bot.web.keys import WRITER
from tests.support.app import CORP_ID, make_config, text_xml
from tests.support.callbacks import click_xml, post_inner, wait_calls
from tests.support.review import add_reviewer, login
from wecom_sdk.testing.fake_api import FakeWeCom

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
ServerFactory = Callable[..., Awaitable[TestServer]]
PATH = "/wecom/callback"
SECRET = "app-secret-for-tests"
SETTINGS = '[alerts]\nmanagers = ["mgr1", "mgr2"]\nescalate_to = ["boss"]\n'
PASSWORD = "correct horse battery"


@pytest.fixture(params=["embedded", "shared"])
async def env(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    aiohttp_client: ClientFactory,
    aiohttp_server: ServerFactory,
) -> tuple[TestClient[Any, Any], FakeWeCom]:
    wecom = FakeWeCom(corp_id=CORP_ID, secret=SECRET)
    server = await aiohttp_server(wecom.app)
    api_base = str(server.make_url("/cgi-bin/"))
    shared: dict[str, str] = {}
    if request.param == "shared":
        shared = {
            "redis_url": request.getfixturevalue("redis_url"),
            "redis_prefix": request.getfixturevalue("redis_prefix"),
        }
        url = request.getfixturevalue("pg_schema_url")
    else:
        url = request.getfixturevalue("sqlite_url")
    config: Config = make_config(
        tmp_path, url, secret=SECRET, api_base=api_base, extra=SETTINGS, **shared
    )
    client = await aiohttp_client(create_app(config))
    for name, role in (("li", "reviewer"), ("wang", "reviewer"), ("admin", "admin")):
        await add_reviewer(client.app[WRITER], name, PASSWORD, role=role)
    return client, wecom


async def raise_alert(
    client: TestClient[Any, Any],
    fake: FakeWeCom,
    text: str,
    msg_id: int,
    from_user: str = "zhangsan",
) -> dict[str, Any]:
    """Post a risky message; return the alert card WeCom was asked to send."""
    before = len(fake.calls_to("message/send"))
    assert await post_inner(client, text_xml(text, msg_id, from_user=from_user)) == 200
    calls = await wait_calls(fake, "message/send", before + 1)
    card: dict[str, Any] = calls[-1].body["template_card"]
    return card


async def page(client: TestClient[Any, Any], path: str, **kw: Any) -> tuple[int, str]:
    resp = await client.get(path, **kw)
    return resp.status, await resp.text()


async def post(
    client: TestClient[Any, Any], path: str, data: dict[str, str]
) -> tuple[int, str, str]:
    resp = await client.post(path, data=data, allow_redirects=False)
    return resp.status, resp.headers.get("Location", ""), await resp.text()


class Tags(HTMLParser):
    """Every element name and attribute name of a page, as a browser would parse them."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.names.add(tag)
        self.attributes.update(name for name, _ in attrs)


def case_url(alert_id: str, action: str) -> str:
    return f"/review/cases/{alert_id}/{action}"


async def test_card_link_login_mark_resolve_and_the_card_follows(
    env: tuple[TestClient[Any, Any], FakeWeCom],
) -> None:
    client, fake = env
    card = await raise_alert(client, fake, "你们再不退款我就去12315维权", 7001)
    link = urlsplit(card["card_action"]["url"]).path
    assert link == "/review/conversations/app%3Azhangsan"
    alert_id = card["button_list"][0]["key"].partition(":")[2]

    # Not logged in: the card's link goes to the login page, which comes back to it.
    resp = await client.get(link, allow_redirects=False)
    assert resp.status == 302
    assert urlsplit(resp.headers["Location"]).path == "/review/login"
    csrf = await login(client, "li", PASSWORD, next_path=link)
    status, html = await page(client, link)
    assert status == 200
    assert "<mark" in html and ">维权</mark>" in html and ">12315</mark>" in html
    for label in ("已处理", "误报", "升级"):
        assert f">{label}</button>" in html

    # The queue lists the case as a link showing the customer's id.
    status, queue = await page(client, "/review/")
    assert status == 200
    assert re.search(
        r'<a class="case-link" href="/review/conversations/app%3Azhangsan#case-[^"]+">zhangsan',
        queue,
    )

    status, where, _ = await post(
        client, case_url(alert_id, "resolve"), {"csrf_token": csrf, "comment": "已电话回访"}
    )
    assert status == 303 and unquote(where).startswith(unquote(link))  # ":" may stay unquoted
    (update,) = await wait_calls(fake, "message/update_template_card", 1)
    assert update.body["button"] == {"replace_name": "已由 li 处理"}
    assert sorted(update.body["userids"]) == ["mgr1", "mgr2"]
    status, queue = await page(client, "/review/")
    assert "app%3Azhangsan" not in queue
    status, resolved = await page(client, "/review/?state=resolved")
    assert "app%3Azhangsan" in resolved
    _, html = await page(client, link)
    assert "已电话回访" in html and "重新打开" in html


async def test_a_post_without_the_csrf_token_is_refused(
    env: tuple[TestClient[Any, Any], FakeWeCom],
) -> None:
    client, fake = env
    card = await raise_alert(client, fake, "我要维权", 7101)
    alert_id = card["button_list"][0]["key"].partition(":")[2]
    await login(client, "li", PASSWORD)
    for data in ({"comment": "x"}, {"comment": "x", "csrf_token": "forged"}):
        status, _, _ = await post(client, case_url(alert_id, "resolve"), data)
        assert status == 403
    assert fake.calls_to("message/update_template_card") == []


async def test_false_positive_and_escalate_need_a_comment(
    env: tuple[TestClient[Any, Any], FakeWeCom],
) -> None:
    client, fake = env
    card = await raise_alert(client, fake, "我要维权", 7201)
    alert_id = card["button_list"][0]["key"].partition(":")[2]
    csrf = await login(client, "li", PASSWORD)
    for action in ("false_positive", "escalate"):
        status, _, html = await post(
            client, case_url(alert_id, action), {"csrf_token": csrf, "comment": " "}
        )
        assert status == 400
        assert "需要填写说明" in html
    status, _, _ = await post(
        client,
        case_url(alert_id, "escalate"),
        {"csrf_token": csrf, "comment": "金额较大，请主管处理"},
    )
    assert status == 303
    sends = await wait_calls(fake, "message/send", 2)
    escalation = sends[-1].body
    assert escalation["touser"] == "boss"
    assert escalation["template_card"]["main_title"]["title"].startswith("【升级】")
    assert "金额较大" in escalation["template_card"]["main_title"]["desc"]
    status, _, _ = await post(
        client,
        case_url(alert_id, "false_positive"),
        {"csrf_token": csrf, "comment": "客户在开玩笑"},
    )
    assert status == 303
    status, html = await page(client, "/review/conversations/app%3Azhangsan")
    assert "误报" in html and "客户在开玩笑" in html


async def test_two_reviewers_never_work_one_case_unknowingly(
    env: tuple[TestClient[Any, Any], FakeWeCom], aiohttp_client: ClientFactory
) -> None:
    client, fake = env
    card = await raise_alert(client, fake, "我要维权", 7301)
    alert_id = card["button_list"][0]["key"].partition(":")[2]
    li_csrf = await login(client, "li", PASSWORD)
    other = await aiohttp_client(client.server)
    wang_csrf = await login(other, "wang", PASSWORD)
    assert (await post(client, case_url(alert_id, "claim"), {"csrf_token": li_csrf}))[0] == 303
    status, _, html = await post(
        other, case_url(alert_id, "resolve"), {"csrf_token": wang_csrf, "comment": ""}
    )
    assert status == 409
    assert "已由 li 认领" in html
    status, _, html = await post(other, case_url(alert_id, "claim"), {"csrf_token": wang_csrf})
    assert status == 409
    # li hands it over; now wang may close it.
    status, _, _ = await post(
        client, case_url(alert_id, "assign"), {"csrf_token": li_csrf, "assignee": "wang"}
    )
    assert status == 303
    status, _, _ = await post(other, case_url(alert_id, "resolve"), {"csrf_token": wang_csrf})
    assert status == 303


async def test_chat_text_is_rendered_inert(env: tuple[TestClient[Any, Any], FakeWeCom]) -> None:
    client, fake = env
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'维权"
    await raise_alert(client, fake, evil, 7401, from_user="<b>x</b>")
    await login(client, "li", PASSWORD)
    status, queue = await page(client, "/review/")
    assert status == 200
    link = re.search(r'href="(/review/conversations/[^"#]+)', queue)
    assert link is not None
    status, html = await page(client, unescape(link.group(1)))
    assert status == 200
    assert "<script>" not in html and "<img" not in html and "<b>x</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert ">维权</mark>" in html
    # No script element and no event-handler attribute on any element of the page.
    tags = Tags()
    tags.feed(html)
    assert "script" not in tags.names and "img" not in tags.names
    assert [name for name in tags.attributes if name.startswith("on")] == []
    resp = await client.get("/review/")
    assert "'unsafe-inline'" not in resp.headers["Content-Security-Policy"]


async def test_a_managers_card_click_shows_up_in_the_case(
    env: tuple[TestClient[Any, Any], FakeWeCom],
) -> None:
    client, fake = env
    card = await raise_alert(client, fake, "我要维权", 7501)
    claim = next(b["key"] for b in card["button_list"] if b["text"] == "认领")
    assert await post_inner(client, click_xml("mgr2", claim, card["task_id"], "rc-click")) == 200
    await wait_calls(fake, "message/update_template_card", 1)
    await login(client, "li", PASSWORD)
    _, html = await page(client, "/review/conversations/app%3Azhangsan")
    assert "mgr2 通过企业微信卡片认领" in html
    assert "已认领" in html and "认领人：mgr2" in html
    assert "提醒卡片 给 mgr1、mgr2 已发送" in html


async def test_views_and_actions_are_audited_for_admins_only(
    env: tuple[TestClient[Any, Any], FakeWeCom],
) -> None:
    client, fake = env
    card = await raise_alert(client, fake, "我要维权", 7601)
    alert_id = card["button_list"][0]["key"].partition(":")[2]
    csrf = await login(client, "li", PASSWORD)
    await page(client, "/review/conversations/app%3Azhangsan")
    await post(client, case_url(alert_id, "note"), {"csrf_token": csrf, "comment": "客户情绪激动"})
    status, _ = await page(client, "/review/admin/audit")
    assert status == 403
    await client.post("/review/logout", data={"csrf_token": csrf})
    await login(client, "admin", PASSWORD)
    status, html = await page(client, "/review/admin/audit?actor=li")
    assert status == 200
    assert "查看" in html and "app:zhangsan" in html
    assert "备注" in html and "客户情绪激动" in html


async def test_context_around_hits_and_more_on_demand(
    env: tuple[TestClient[Any, Any], FakeWeCom],
) -> None:
    client, fake = env
    for n in range(14):
        assert await post_inner(client, text_xml(f"普通消息{n}", 7700 + n)) == 200
    await raise_alert(client, fake, "我要维权", 7800)
    await login(client, "li", PASSWORD)
    _, html = await page(client, "/review/conversations/app%3Azhangsan")
    assert "省略 9 条消息" in html  # 5 of context before the hit (the default)
    assert "普通消息9" in html and "普通消息8" not in html
    _, html = await page(client, "/review/conversations/app%3Azhangsan?context=20")
    assert "普通消息0" in html and "省略" not in html
