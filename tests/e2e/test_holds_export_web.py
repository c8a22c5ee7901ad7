"""The review web's legal holds pages and a conversation's export download, on both backends:
admins only (a reviewer gets 403), CSRF required, every view and change audited, the export's
bytes (BOM, the conversation's messages only, hostile text neutralised)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import Engine, select, text

from monitor.archive import Archive, GroupCommitWriter
from monitor.archive.audit import AUDIT
from monitor.archive.holds import load_hold_set
from monitor.review.case_export import download_name
from tests.support.retention import message
from tests.support.review import (
    FAST_HASHER,
    add_reviewer,
    login,
    review_services,
    review_test_app,
)

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
PASSWORD = "correct horse battery"
HOSTILE = '=HYPERLINK("http://evil","点我")<script>alert(1)</script>'
CONV = "kf:K:wm/Hostile"


@pytest.fixture
def engine(schema_engine: Engine) -> Engine:
    return schema_engine


@pytest.fixture
async def client(
    engine: Engine, aiohttp_client: ClientFactory
) -> AsyncIterator[TestClient[Any, Any]]:
    async with GroupCommitWriter(engine) as writer:
        archive = Archive(writer)
        await archive.store_inbound(message("e1", CONV, content=HOSTILE))
        await archive.store_inbound(
            message("e2", CONV, sender="zhang", direction="staff", content="第二行\n换行")
        )
        await archive.store_inbound(message("e3", "kf:K:other", content="别的会话"))
        await add_reviewer(writer, "li", PASSWORD, hasher=FAST_HASHER)
        await add_reviewer(writer, "admin", PASSWORD, role="admin", hasher=FAST_HASHER)
        yield await aiohttp_client(review_test_app(review_services(writer)))


def audit_rows(engine: Engine, action: str) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(
            select(AUDIT.c.actor, AUDIT.c.target, AUDIT.c.detail).where(AUDIT.c.action == action)
        ).all()


async def test_holds_are_admin_only(client: TestClient[Any, Any], engine: Engine) -> None:
    csrf = await login(client, "li", PASSWORD)
    assert (await client.get("/review/admin/holds")).status == 403
    resp = await client.post(
        "/review/admin/holds",
        data={"csrf_token": csrf, "scope": "conversation", "value": CONV, "reason": "x"},
    )
    assert resp.status == 403
    page = await client.get(f"/review/conversations/{CONV.replace('/', '%2F')}")
    html = await page.text()
    assert page.status == 200 and "保留此会话" not in html
    assert "?export=csv" in html  # any reviewer may export
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM legal_hold")).scalar_one() == 0


async def test_an_admin_sets_and_releases_holds_with_reasons_all_audited(
    client: TestClient[Any, Any], engine: Engine
) -> None:
    csrf = await login(client, "admin", PASSWORD)
    conv_page = await (await client.get(f"/review/conversations/{CONV.replace('/', '%2F')}")).text()
    assert "保留此会话" in conv_page and "保留该员工的全部会话" in conv_page
    assert '<option value="zhang">' in conv_page  # the staff member who wrote in it
    # Without the CSRF token: refused, nothing set.
    no_csrf = await client.post(
        "/review/admin/holds", data={"scope": "conversation", "value": CONV, "reason": "诉讼"}
    )
    assert no_csrf.status == 403
    # A reason is required.
    empty = await client.post(
        "/review/admin/holds",
        data={"csrf_token": csrf, "scope": "conversation", "value": CONV, "reason": " "},
    )
    assert empty.status == 400 and "请填写原因" in await empty.text()
    for scope, value in (("conversation", CONV), ("staff", "zhang")):
        resp = await client.post(
            "/review/admin/holds",
            data={"csrf_token": csrf, "scope": scope, "value": value, "reason": "诉讼<b>"},
            allow_redirects=False,
        )
        assert resp.status == 303 and resp.headers["Location"].endswith("?done=hold_set")
    page = await client.get("/review/admin/holds?done=hold_set")
    html = await page.text()
    assert "已设置法律保留" in html and "诉讼&lt;b&gt;" in html and "诉讼<b>" not in html
    with engine.connect() as conn:
        holds = load_hold_set(conn)
        hold_id = conn.execute(text("SELECT id FROM legal_hold WHERE scope = 'staff'")).scalar_one()
    assert CONV in holds.conversations and holds.staff == {"zhang"}
    again = await client.post(
        "/review/admin/holds",
        data={"csrf_token": csrf, "scope": "staff", "value": "zhang", "reason": "再次"},
    )
    assert again.status == 400 and "已处于保留状态" in await again.text()
    no_reason = await client.post(
        f"/review/admin/holds/{hold_id}/release", data={"csrf_token": csrf, "reason": ""}
    )
    assert no_reason.status == 400
    released = await client.post(
        f"/review/admin/holds/{hold_id}/release",
        data={"csrf_token": csrf, "reason": "调查结束"},
        allow_redirects=False,
    )
    assert released.status == 303
    html = await (await client.get("/review/admin/holds")).text()
    assert "调查结束" in html and "已解除的保留" in html
    with engine.connect() as conn:
        assert load_hold_set(conn).staff == frozenset()
    sets = audit_rows(engine, "hold_set")
    assert sorted((r.actor, r.target) for r in sets) == [("admin", CONV), ("admin", "zhang")]
    release = audit_rows(engine, "hold_release")
    assert [(r.actor, r.target, json.loads(r.detail)["reason"]) for r in release] == [
        ("admin", "zhang", "调查结束")
    ]
    assert len(audit_rows(engine, "hold_view")) >= 3


async def test_the_export_downloads_one_conversation_neutralised_and_audited(
    client: TestClient[Any, Any], engine: Engine
) -> None:
    await login(client, "li", PASSWORD)
    path = f"/review/conversations/{CONV.replace('/', '%2F')}/export"
    resp = await client.get(path, params={"format": "csv"})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    name = unquote(disposition.partition("filename*=UTF-8''")[2])
    assert name.startswith("会话-kf_K_wm_Hostile-") and name.endswith(".csv")
    body = await resp.read()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert rows[0][:3] == ["id", "time", "create_time"]
    texts = [row[9] for row in rows[1:]]
    assert texts == ["'" + HOSTILE, "第二行\n换行"]  # a formula cell gets its apostrophe
    assert all(row[4] == CONV for row in rows[1:])

    lines = await (await client.get(path, params={"format": "jsonl"})).read()
    objects = [json.loads(line) for line in lines.decode().splitlines()]
    assert [o["text"] for o in objects] == [HOSTILE, "第二行\n换行"]
    page = f"/review/conversations/{CONV.replace('/', '%2F')}"
    linked = await client.get(page, params={"export": "jsonl"})  # the page's own link
    assert linked.status == 200 and await linked.read() == lines
    assert (await client.get(path, params={"format": "xlsx"})).status == 400
    missing = await client.get("/review/conversations/kf%3Anone/export")
    assert missing.status == 404
    exports = audit_rows(engine, "export")
    assert [(r.actor, r.target, json.loads(r.detail)) for r in exports] == [
        ("li", CONV, {"format": "csv", "rows": 2}),
        ("li", CONV, {"format": "jsonl", "rows": 2}),
        ("li", CONV, {"format": "jsonl", "rows": 2}),
    ]


def test_download_names_lose_path_characters() -> None:
    from datetime import UTC, datetime

    assert download_name('a/b:c*"d', "csv", datetime(2026, 1, 1, 20, tzinfo=UTC)) == (
        "会话-a_b_c_d-20260102.csv"
    )
