"""The review web's archive search: the page, its filters, escaping, audit rows, the export, and
the conversation page opened at a result's message."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from urllib.parse import unquote

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import Engine, select

from monitor.archive import Archive, GroupCommitWriter, InboundRecord
from monitor.archive.audit import AuditEventRecord
from monitor.archive.export import COLUMNS
from monitor.archive.models import ArchivedHit
from monitor.review.search_pages import search_filter
from monitor.review.settings import ReviewSettings
from tests.support.review import FAST_HASHER, add_reviewer, login, review_services, review_test_app
from tests.unit.monitor.review.conftest import FakeClock

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PASSWORD = "alice-password-1"
CONV = "ma:zhangsan:wmCust"
HOSTILE = '<script>alert("x")</script>我要维权&退款'


@pytest.fixture
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """SQLite, unless a test asks for both backends (the queries are tested on both elsewhere)."""
    if getattr(request, "param", "sqlite") == "postgresql":
        return str(request.getfixturevalue("pg_schema_url"))
    return sqlite_url


def record(n: int, content: str | None, **values: object) -> InboundRecord:
    fields: dict[str, object] = {
        "dedupe_key": f"ma:{n}",
        "channel": "msgaudit",
        "msg_type": "text" if content is not None else "image",
        "from_user": "zhangsan",
        "to_user": "wmCust",
        "create_time": int(T0.timestamp()) + n,
        "raw": "{}",
        "content": content,
        "rules_version": "v1",
        "conversation_id": CONV,
        "direction": "staff",
        **values,
    }
    return InboundRecord(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def client(aiohttp_client, writer: GroupCommitWriter, clock: FakeClock) -> TestClient:
    await add_reviewer(writer, "alice", PASSWORD, hasher=FAST_HASHER)
    archive = Archive(writer, clock=lambda: T0)
    await archive.store_inbound(record(1, "你好，在吗"))
    await archive.store_inbound(
        record(2, HOSTILE, hits=(ArchivedHit("维权", "客户维权", 3, 31, 33),))
    )
    await archive.store_inbound(
        record(3, '=HYPERLINK("x") 维权', from_user="wmCust", direction="customer")
    )
    await archive.store_inbound(record(4, None))
    for n in range(5, 65):
        await archive.store_inbound(record(n, f"第{n}条，好的", conversation_id="ma:lisi:wmB"))
    services = review_services(writer, ReviewSettings(), clock=clock)
    app_client: TestClient = await aiohttp_client(review_test_app(services))
    await login(app_client, "alice", PASSWORD)
    return app_client


def audit_rows(engine: Engine, action: str) -> list[AuditEventRecord]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditEventRecord.__table__).where(AuditEventRecord.__table__.c.action == action)
        ).all()
    return [AuditEventRecord(**row._mapping) for row in rows]


def result_ids(html: str) -> list[int]:
    return [int(m) for m in re.findall(r'href="/review/messages/(\d+)"', html)]


async def test_search_marks_the_match_escapes_chat_text_and_links_to_the_message(
    client: TestClient, engine: Engine
) -> None:
    resp = await client.get("/review/search", params={"q": "维权"})
    html = await resp.text()
    assert resp.status == 200
    assert "找到 <strong>2</strong> 条消息" in html
    assert result_ids(html) == [3, 2]
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;我要<mark>维权</mark>&amp;退款" in html
    link = await client.get("/review/messages/2", allow_redirects=False)
    assert link.status == 303
    assert unquote(link.headers["Location"]) == f"/review/conversations/{CONV}?at=2#m2"
    assert (await client.get("/review/messages/999999", allow_redirects=False)).status == 404
    [event] = audit_rows(engine, "search")
    assert event.actor == "alice" and event.target == ""
    assert json.loads(event.detail) == {"q": "维权", "page": "1", "found": "2"}


async def test_filters_narrow_the_search_and_are_audited(
    client: TestClient, engine: Engine
) -> None:
    html = await (
        await client.get("/review/search", params={"q": "维权", "customer": "wmCust"})
    ).text()
    assert result_ids(html) == [3]
    html = await (
        await client.get("/review/search", params={"q": "维权", "staff": "zhangsan"})
    ).text()
    assert result_ids(html) == [2]
    html = await (await client.get("/review/search", params={"word": "维权"})).text()
    assert result_ids(html) == [2]  # a filter alone lists its messages
    html = await (await client.get("/review/search", params={"q": "维权", "severity": "4"})).text()
    assert "没有找到包含“维权”的消息" in html and result_ids(html) == []
    details = [json.loads(e.detail) for e in audit_rows(engine, "search")]
    assert {"q": "维权", "customer": "wmCust", "page": "1", "found": "1"} in details
    assert {"word": "维权", "page": "1", "found": "1"} in details


async def test_pages_of_fifty(client: TestClient) -> None:
    first = await (await client.get("/review/search", params={"q": "好的"})).text()
    assert "找到 <strong>60</strong> 条消息，第 1 页" in first
    assert result_ids(first) == list(range(64, 14, -1))
    assert "page=2" in first
    second = await (await client.get("/review/search", params={"q": "好的", "page": "2"})).text()
    assert result_ids(second) == list(range(14, 4, -1))


@pytest.mark.parametrize(
    "params",
    [
        {"q": "x" * 500, "since": "2026-13-45", "severity": "9", "page": "-3", "state": "nope"},
        {"q": "%", "until": "not a date", "page": "999999999999"},
        {"q": "   "},
        {"q": "\\_'\";--"},
    ],
)
async def test_bad_input_is_never_an_error_page(client: TestClient, params: dict[str, str]) -> None:
    resp = await client.get("/review/search", params=params)
    assert resp.status == 200, await resp.text()


async def test_empty_page_is_not_audited_and_nothing_found_says_so(
    client: TestClient, engine: Engine
) -> None:
    html = await (await client.get("/review/search")).text()
    assert "输入文字或选择筛选条件后开始搜索" in html
    assert audit_rows(engine, "search") == []
    html = await (await client.get("/review/search", params={"q": "火星文"})).text()
    assert "没有找到包含“火星文”的消息" in html


async def test_the_search_needs_a_login(aiohttp_client, writer: GroupCommitWriter) -> None:
    services = review_services(writer, ReviewSettings())
    anonymous = await aiohttp_client(review_test_app(services))
    resp = await anonymous.get("/review/search?q=x", allow_redirects=False)
    assert resp.status in (302, 303) and "/review/login" in resp.headers["Location"]
    resp = await anonymous.get("/review/search/export?q=x", allow_redirects=False)
    assert resp.status in (302, 303)


async def test_csv_export_has_a_bom_the_rows_and_neutralised_formulas(
    client: TestClient, engine: Engine
) -> None:
    resp = await client.get("/review/search/export", params={"q": "维权", "format": "csv"})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "filename*=UTF-8''" in disposition
    assert unquote(disposition.split("UTF-8''", 1)[1]).startswith("聊天记录搜索-")
    body = await resp.read()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert rows[0] == list(COLUMNS)
    assert [r[0] for r in rows[1:]] == ["3", "2"]
    assert rows[1][COLUMNS.index("text")].startswith("'=HYPERLINK")
    assert rows[2][COLUMNS.index("text")] == HOSTILE
    assert rows[2][COLUMNS.index("hits")] == "维权(客户维权,高)[31:33]"
    [event] = audit_rows(engine, "search_export")
    assert json.loads(event.detail) == {"q": "维权", "format": "csv", "rows": 2, "complete": True}


async def test_jsonl_export_streams_every_match_in_chunks(
    client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("monitor.review.search_pages.EXPORT_CHUNK", 7)
    resp = await client.get("/review/search/export", params={"q": "好的", "format": "jsonl"})
    assert resp.headers["Content-Type"].startswith("application/x-ndjson")
    lines = (await resp.read()).decode("utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == list(range(64, 4, -1))
    assert json.loads(lines[0])["text"] == "第64条，好的"
    [event] = audit_rows(engine, "search_export")
    assert json.loads(event.detail)["rows"] == 60


async def test_csv_export_of_nothing_is_the_header_and_an_empty_search_goes_back(
    client: TestClient,
) -> None:
    body = await (await client.get("/review/search/export", params={"q": "火星文"})).read()
    assert body.decode("utf-8-sig").splitlines() == [",".join(COLUMNS)]
    resp = await client.get("/review/search/export", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/review/search"


async def test_conversation_page_opens_at_the_message_in_a_long_conversation(
    client: TestClient,
) -> None:
    url = "/review/conversations/ma%3Alisi%3AwmB"
    html = await (await client.get(url, params={"at": "10", "context": "3"})).text()
    shown = [int(m) for m in re.findall(r'id="m(\d+)"', html)]
    assert shown[:7] == [7, 8, 9, 10, 11, 12, 13]
    assert 'id="m10" aria-current="true"' in html
    html = await (await client.get(url, params={"at": "2", "context": "3"})).text()  # not its own
    assert 'aria-current="true"' not in html


def test_search_filter_parses_leniently() -> None:
    wanted = search_filter({"q": "  a b  ", "severity": "x", "state": "claimed", "page": "0"})
    assert (wanted.text, wanted.severity, wanted.state, wanted.page) == ("a b", None, "claimed", 1)
    assert search_filter({"q": "y" * 100}).text == "y" * 64


async def test_pseudonymised_results_and_exports_never_name_the_customer(
    aiohttp_client, writer: GroupCommitWriter, clock: FakeClock
) -> None:
    await add_reviewer(writer, "bob", PASSWORD, hasher=FAST_HASHER)
    archive = Archive(writer, clock=lambda: T0)
    await archive.store_inbound(record(1, "我要维权", from_user="wmCust", direction="customer"))
    settings = ReviewSettings(pseudonymise=True, pseudonym_key="k" * 32)
    services = review_services(writer, settings, clock=clock)
    bob: TestClient = await aiohttp_client(review_test_app(services))
    await login(bob, "bob", PASSWORD)
    html = await (await bob.get("/review/search", params={"q": "维权"})).text()
    assert result_ids(html) == [1] and "<mark>维权</mark>" in html
    assert "wmCust" not in html and "客户-" in html
    for fmt in ("csv", "jsonl"):
        body = await (
            await bob.get("/review/search/export", params={"q": "维权", "format": fmt})
        ).read()
        assert "我要维权" in body.decode("utf-8-sig") and b"wmCust" not in body
