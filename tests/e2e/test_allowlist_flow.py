"""Learning from false positives, end to end on the running app: a reviewer calls a hit 误报, is
offered the phrase around it, backtests it over the archive and submits it; an admin confirms;
the rule file changes (audited, tamper-evident); the app's rule watcher reloads, and a new
message with the phrase is no longer flagged while the word elsewhere still is.

Runs on the embedded set-up (SQLite, no Redis) and the shared one (PostgreSQL + Redis).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
import tomllib
from collections.abc import Awaitable, Callable
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.config import Config
from bot.web.app import create_app
from bot.web.keys import ARCHIVE, RULES, WRITER
from monitor.archive.audit import AUDIT
from monitor.review.proposal_models import AllowProposalRecord
from tests.support.app import CORP_ID, make_config, text_xml
from tests.support.callbacks import post_inner, wait_calls
from tests.support.review import add_reviewer, csrf_of, login
from wecom_sdk.testing.fake_api import FakeWeCom

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
ServerFactory = Callable[..., Awaitable[TestServer]]
SECRET = "app-secret-for-tests"
PASSWORD = "correct horse battery"
RULES_TEXT = """\
# 测试规则：这些注释和另一组都必须原样保留
[[group]]
name = "客户投诉"
severity = "high"
audience = "any"
words = ["投诉"]   # 行尾注释

# 另一组
[[group]]
name = "其他"
severity = "low"
audience = "any"
words = ["废物"]
"""


@pytest.fixture(params=["embedded", "shared"])
async def env(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    aiohttp_client: ClientFactory,
    aiohttp_server: ServerFactory,
) -> tuple[TestClient[Any, Any], FakeWeCom, Path]:
    wecom = FakeWeCom(corp_id=CORP_ID, secret=SECRET)
    server = await aiohttp_server(wecom.app)
    shared: dict[str, str] = {}
    if request.param == "shared":
        shared = {
            "redis_url": request.getfixturevalue("redis_url"),
            "redis_prefix": request.getfixturevalue("redis_prefix"),
        }
        url = request.getfixturevalue("pg_schema_url")
    else:
        url = request.getfixturevalue("sqlite_url")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "groups.toml").write_text(RULES_TEXT, encoding="utf-8")
    extra = (
        f'[alerts]\nmanagers = ["mgr1"]\n[rules]\npaths = ["{rules}"]\nreload_interval_s = 0.1\n'
    )
    config: Config = make_config(
        tmp_path,
        url,
        secret=SECRET,
        api_base=str(server.make_url("/cgi-bin/")),
        extra=extra,
        **shared,
    )
    client = await aiohttp_client(create_app(config))
    for name, role in (("li", "reviewer"), ("admin", "admin")):
        await add_reviewer(client.app[WRITER], name, PASSWORD, role=role)
    return client, wecom, rules / "groups.toml"


async def hits_of(client: TestClient[Any, Any], msg_id: int) -> list[str]:
    archive = client.app[ARCHIVE]
    message = await archive.get(f"msg:{msg_id}")
    assert message is not None, f"message {msg_id} not archived"
    return [h.word for h in await archive.hits_of(message.id)]


async def get(client: TestClient[Any, Any], path: str, **kw: Any) -> tuple[int, str]:
    resp = await client.get(path, **kw)
    return resp.status, await resp.text()


async def post(
    client: TestClient[Any, Any], path: str, data: dict[str, str]
) -> tuple[int, str, str]:
    resp = await client.post(path, data=data, allow_redirects=False)
    return resp.status, resp.headers.get("Location", ""), await resp.text()


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found is not None, f"no {name} field"
    return unescape(found.group(1))


async def audit_rows(client: TestClient[Any, Any], action: str) -> list[Any]:
    engine = client.app[WRITER].engine

    def read() -> list[Any]:
        with engine.connect() as conn:
            return list(conn.execute(select(AUDIT).where(AUDIT.c.action == action)))

    return await asyncio.to_thread(read)


async def test_false_positive_to_allow_list_and_the_app_stops_flagging(
    env: tuple[TestClient[Any, Any], FakeWeCom, Path], aiohttp_client: ClientFactory
) -> None:
    client, fake, rule_file = env
    # Past hits: two inside the phrase (one with markup in it), one not.
    assert await post_inner(client, text_xml("<b>投诉建议箱</b>满了", 8001, "lisi")) == 200
    assert await post_inner(client, text_xml("我要投诉你们", 8002, "wangwu")) == 200
    assert await post_inner(client, text_xml("请问投诉建议箱在哪里", 8003, "zhangsan")) == 200
    cards = await wait_calls(fake, "message/send", 3)
    (card,) = [
        c.body["template_card"]
        for c in cards
        if "zhangsan" in c.body["template_card"]["card_action"]["url"]
    ]
    alert_id = card["button_list"][0]["key"].partition(":")[2]
    conversation = urlsplit(card["card_action"]["url"]).path

    # 误报 still needs a comment and still closes the case; the case then offers the allow-list.
    csrf = await login(client, "li", PASSWORD)
    status, _, _ = await post(
        client, f"/review/cases/{alert_id}/false_positive", {"csrf_token": csrf, "comment": ""}
    )
    assert status == 400
    status, where, _ = await post(
        client,
        f"/review/cases/{alert_id}/false_positive",
        {"csrf_token": csrf, "comment": "客户问的是投诉建议箱"},
    )
    assert status == 303 and unquote(where).startswith(unquote(conversation))
    status, html = await get(client, where)
    assert status == 200 and "已标记为误报" in html
    offer_link = f"/review/cases/{alert_id}/allow"
    assert f'href="{offer_link}"' in html

    # The offer: the hit, marked, and the phrase around it, editable.
    status, offer = await get(client, offer_link)
    assert status == 200
    assert "请问<mark>投诉</mark>建议箱在哪里" in offer
    assert hidden(offer, "phrase") == "投诉建议"  # jieba's 投诉 + 建议
    hit_id = hidden(offer, "hit")
    assert hidden(offer, "group") == "客户投诉"

    # The reviewer edits the phrase; one that lacks the hit is refused in Chinese.
    query = {"group": "客户投诉", "hit": hit_id, "alert": alert_id}
    status, html = await get(client, "/review/allowlist", params={**query, "phrase": "建议箱"})
    assert status == 400 and "短语必须包含命中的文字「投诉」" in html
    status, html = await get(client, "/review/allowlist", params={**query, "phrase": "投诉建议箱"})
    assert status == 200
    assert "已检查 3 条命中（共 3 条）" in html
    assert '<strong class="dropped">2</strong>' in html
    assert '<strong class="remaining">1</strong>' in html
    assert "&lt;b&gt;<mark>投诉</mark>建议箱&lt;/b&gt;满了" in html  # escaped, marked
    assert "/review/conversations/app%3Alisi#m" in html
    sha_shown = hashlib.sha256(rule_file.read_bytes()).hexdigest()
    assert sha_shown[:12] in html
    assert "/allowlist/confirm" not in html  # not an admin: only the proposal form
    csrf = csrf_of(html)

    # A reviewer cannot confirm; a POST without the CSRF token is refused.
    form = {"group": "客户投诉", "phrase": "投诉建议箱", "hit": hit_id, "alert": alert_id}
    status, _, _ = await post(
        client, "/review/allowlist/confirm", {**form, "csrf_token": csrf, "sha256": sha_shown}
    )
    assert status == 403
    status, _, _ = await post(client, "/review/allowlist/propose", form)
    assert status == 403
    status, _, _ = await post(client, "/review/admin/allowlist/1/reject", {"csrf_token": csrf})
    assert status == 403
    assert (await get(client, "/review/admin/allowlist"))[0] == 403
    status, where, _ = await post(client, "/review/allowlist/propose", {**form, "csrf_token": csrf})
    assert status == 303 and "done=allow_proposed" in where
    status, html = await get(client, where)
    assert "提议已提交" in html
    status, _, html = await post(client, "/review/allowlist/propose", {**form, "csrf_token": csrf})
    assert status == 409 and "已在等待管理员审批" in html
    assert rule_file.read_text(encoding="utf-8") == RULES_TEXT  # nothing written yet
    (proposed,) = await audit_rows(client, "allow_propose")
    assert proposed.actor == "li" and json.loads(proposed.detail)["backtest"]["dropped"] == 2

    # The admin sees the proposal, re-runs the backtest and confirms.
    admin = await aiohttp_client(client.server)
    await login(admin, "admin", PASSWORD)
    status, listing = await get(admin, "/review/admin/allowlist")
    assert status == 200 and "投诉建议箱" in listing and "排除 2 条" in listing
    review = unescape(re.search(r'href="(/review/allowlist\?[^"]+)"', listing).group(1))  # type: ignore[union-attr]
    status, html = await get(admin, review)
    assert status == 200 and "确认加入白名单" in html
    admin_csrf = csrf_of(html)
    confirm = {
        "csrf_token": admin_csrf,
        "group": hidden(html, "group"),
        "phrase": "投诉建议箱",
        "sha256": hidden(html, "sha256"),
        "proposal": hidden(html, "proposal"),
        "alert": alert_id,
    }
    old_version = client.app[RULES].version
    status, where, _ = await post(admin, "/review/allowlist/confirm", confirm)
    assert status == 303 and "done=allow_confirmed" in where

    # The file: one line added, everything else byte-identical; it loads.
    new_text = rule_file.read_text(encoding="utf-8")
    assert new_text.replace('allow = ["投诉建议箱"]\n', "", 1) == RULES_TEXT
    assert tomllib.loads(new_text)["group"][0]["allow"] == ["投诉建议箱"]
    # The audit chain holds who, the file, the group, the phrase, both hashes and the counts.
    (row,) = await audit_rows(client, "allow_confirm")
    detail = json.loads(row.detail)
    assert row.actor == "admin" and row.target == "allowlist:客户投诉"
    assert detail["phrase"] == "投诉建议箱" and detail["file"] == str(rule_file)
    assert detail["sha256_before"] == sha_shown
    assert detail["sha256_after"] == hashlib.sha256(new_text.encode()).hexdigest()
    assert detail["backtest"]["dropped"] == 2 and detail["backtest"]["remaining"] == 1
    status, listing = await get(admin, where)
    assert "已加入白名单" in listing and "没有待审批的提议" in listing

    # Confirming again with the old sha256 is refused: the file changed meanwhile.
    confirm.pop("proposal")
    status, _, html = await post(admin, "/review/allowlist/confirm", confirm)
    assert status == 400 and "已经在白名单里" in html  # the phrase check sees the new file
    confirm["phrase"] = "投诉建议"
    status, _, html = await post(admin, "/review/allowlist/confirm", confirm)
    assert status == 409 and "请重新回测" in html
    assert rule_file.read_text(encoding="utf-8") == new_text

    # The running app reloads within its poll interval, then drops the phrase's hit only.
    deadline = time.monotonic() + 10
    while client.app[RULES].version == old_version:
        assert time.monotonic() < deadline, "the rules were not reloaded"
        await asyncio.sleep(0.05)
    assert await post_inner(client, text_xml("投诉建议箱又满了", 8004, "zhaoliu")) == 200
    assert await post_inner(client, text_xml("我还是要投诉", 8005, "zhaoliu")) == 200
    assert await hits_of(client, 8004) == []
    assert await hits_of(client, 8005) == ["投诉"]


async def test_admin_rejects_a_proposal(
    env: tuple[TestClient[Any, Any], FakeWeCom, Path], aiohttp_client: ClientFactory
) -> None:
    client, fake, rule_file = env
    assert await post_inner(client, text_xml("我要投诉你们", 8101)) == 200
    await wait_calls(fake, "message/send", 1)
    csrf = await login(client, "li", PASSWORD)
    form = {"csrf_token": csrf, "group": "客户投诉", "phrase": "要投诉"}
    status, _, _ = await post(client, "/review/allowlist/propose", form)
    assert status == 303
    admin = await aiohttp_client(client.server)
    admin_csrf = await login(admin, "admin", PASSWORD)
    engine = client.app[WRITER].engine

    def proposal_id() -> int:
        with engine.connect() as conn:
            return int(conn.execute(select(AllowProposalRecord.__table__.c.id)).scalar_one())

    pid = await asyncio.to_thread(proposal_id)
    status, where, _ = await post(
        admin,
        f"/review/admin/allowlist/{pid}/reject",
        {"csrf_token": admin_csrf, "comment": "会漏掉真正的投诉"},
    )
    assert status == 303
    status, listing = await get(admin, where)
    assert "已驳回" in listing and "会漏掉真正的投诉" in listing
    (row,) = await audit_rows(client, "allow_reject")
    assert row.actor == "admin" and json.loads(row.detail)["comment"] == "会漏掉真正的投诉"
    status, _, _ = await post(
        admin, f"/review/admin/allowlist/{pid}/reject", {"csrf_token": admin_csrf}
    )
    assert status == 409
    assert rule_file.read_text(encoding="utf-8") == RULES_TEXT
