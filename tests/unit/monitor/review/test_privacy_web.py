"""Pseudonymised review and sampled cases through HTTP: what the pages show, reveals, the admins'
list, and actions on 抽检 cases. The review sub-app runs on a bare parent over a SQLite writer.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import Connection, Engine, select

from monitor.alerts import store
from monitor.alerts.models import OutboxKind
from monitor.alerts.policy import AlertKind, AlertStatus, OpenAlert
from monitor.archive import Archive, ArchivedHit, GroupCommitWriter, InboundRecord
from monitor.archive.audit import AUDIT
from monitor.review.pseudonyms import Pseudonymiser, pseudonym
from monitor.review.sampling import IsoWeek, run_sampling, sample_id
from monitor.review.services import ReviewServices
from monitor.review.settings import ReviewSettings
from rules.models import Severity
from tests.support.review import FAST_HASHER, add_reviewer, login, review_services, review_test_app
from tests.unit.monitor.review.conftest import FakeClock

PW = "a-long-password"
KEY = "a-pseudonym-key-for-the-tests-0123456789"
CUSTOMER = "wmSecretCustomer42"
NAME = "王秘密女士"
CONV = f"kf:wk1:{CUSTOMER}"
QUIET = [f"kf:wk1:wmQuietCustomer{i}" for i in range(3)]
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
WEEK = IsoWeek.of(T0)
HIDDEN = pseudonym(KEY.encode(), CUSTOMER)
_REF = re.compile(r'name="ref" value="([^"]+)"')


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """SQLite only: the sampling and store tests cover PostgreSQL."""
    return sqlite_url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(WEEK.end + timedelta(days=1))


def _record(n: int, conversation: str, direction: str, text: str, **kw: object) -> InboundRecord:
    author = conversation.rsplit(":", 1)[1] if direction == "customer" else "zhangsan"
    return InboundRecord(
        dedupe_key=f"kf:m{n}",
        channel="kf",
        msg_type="text",
        from_user=author,
        to_user="wk1",
        create_time=int(T0.timestamp()) + n,
        raw="{}",
        content=text,
        conversation_id=conversation,
        direction=direction,
        rules_version="r1",
        **kw,  # type: ignore[arg-type]
    )


async def _seed(writer: GroupCommitWriter, clock: FakeClock) -> None:
    """A customer-risk case on CONV (its customer named), and three quiet conversations that the
    week's sample (rate 1) turns into 抽检 cases."""
    archive = Archive(writer, clock=lambda: T0)
    hit = ArchivedHit(word="维权", group="customer_risk", severity=3, start=2, end=4)
    await archive.store_inbound(_record(1, CONV, "staff", "您好"))
    stored = await archive.store_inbound(_record(2, CONV, "customer", "我要维权", hits=(hit,)))
    for n, conversation in enumerate(QUIET, start=10):
        await archive.store_inbound(_record(n, conversation, "customer", "在吗"))
        await archive.store_inbound(_record(n + 100, conversation, "staff", "在的"))
    alert = OpenAlert(
        alert_id="a1",
        conversation_id=CONV,
        kind=AlertKind.CUSTOMER_RISK,
        severity=Severity.HIGH,
        words=("维权",),
        count=1,
        first_at=T0,
        last_at=T0,
        latest_text="我要维权",
        recipients=("mgr1",),
        customer_id=CUSTOMER,
        customer_name=NAME,
        staff_userid="zhangsan",
    )

    def add(conn: Connection) -> None:
        store.insert_alert(
            conn, alert, latest_message_id=stored.message_id, cards_sent=0, rules_version="r1"
        )
        store.link_message(conn, "a1", stored.message_id)

    await writer.run(add)
    report = await run_sampling(writer, WEEK, 1.0, clock())
    assert sorted(report.created) == sorted(sample_id(WEEK, c) for c in QUIET)


def _settings(pseudonymise: bool) -> ReviewSettings:
    return ReviewSettings(pseudonymise=pseudonymise, pseudonym_key=KEY, reveal_minutes=20)


async def _client(
    aiohttp_client: object, writer: GroupCommitWriter, clock: FakeClock, *, pseudonymise: bool
) -> tuple[TestClient, ReviewServices]:
    await _seed(writer, clock)
    for name, role in (("alice", "reviewer"), ("bob", "reviewer"), ("root", "admin")):
        await add_reviewer(writer, name, PW, role, hasher=FAST_HASHER)
    services = review_services(writer, _settings(pseudonymise), clock=clock)
    client = await aiohttp_client(review_test_app(services))  # type: ignore[operator]
    return client, services


@pytest.fixture
async def private(
    aiohttp_client: object, writer: GroupCommitWriter, clock: FakeClock
) -> tuple[TestClient, ReviewServices]:
    return await _client(aiohttp_client, writer, clock, pseudonymise=True)


def _reveals(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(select(AUDIT).where(AUDIT.c.action == "reveal").order_by(AUDIT.c.id))
        return [dict(r._mapping) for r in rows]


async def _conversation(client: TestClient, conversation: str = CONV) -> str:
    resp = await client.get(f"/review/conversations/{conversation}")
    assert resp.status == 200
    return await resp.text()


async def test_pages_never_show_the_customer_when_pseudonymised(
    private: tuple[TestClient, ReviewServices],
) -> None:
    client, _ = private
    await login(client, "alice", PW)
    queue = await client.get("/review/", params={"state": "all"})
    html = await queue.text()
    assert queue.status == 200
    for secret in (CUSTOMER, NAME, "wmQuietCustomer"):
        assert secret not in html and secret not in unquote(html)
    assert HIDDEN in html
    assert html.count("抽检</span>") == 3
    assert 'href="/review/cases/a1"' in html

    link = await client.get("/review/cases/a1", allow_redirects=False)
    assert link.status == 303
    assert link.headers["Location"].endswith("#case-a1")

    page = await _conversation(client)
    for secret in (CUSTOMER, NAME):
        assert secret not in page and secret not in unquote(page)
    assert HIDDEN in page and "<mark" in page and "我要" in page
    assert page.count('action="/review/reveal"') == 1
    quiet = await _conversation(client, QUIET[0])
    assert "wmQuietCustomer" not in quiet and "wmQuietCustomer" not in unquote(quiet)
    assert "抽检" in quiet and "已处理" in quiet


async def test_the_queue_filters_sampled_cases(
    private: tuple[TestClient, ReviewServices],
) -> None:
    client, _ = private
    await login(client, "alice", PW)
    html = await (await client.get("/review/", params={"audience": "sample"})).text()
    assert "共 3 个案件" in html and HIDDEN not in html
    html = await (await client.get("/review/", params={"audience": "customer"})).text()
    assert "共 1 个案件" in html and HIDDEN in html


async def _reveal(client: TestClient, csrf: str, page: str, reason: str) -> int:
    ref = _REF.search(page)
    assert ref is not None
    back = re.search(r'name="back" value="([^"]+)"', page)
    assert back is not None
    form = {"csrf_token": csrf, "ref": ref.group(1), "back": back.group(1), "reason": reason}
    resp = await client.post("/review/reveal", data=form, allow_redirects=False)
    if resp.status == 303:
        assert resp.headers["Location"].startswith("/review/conversations/")
        assert "done=reveal" in resp.headers["Location"]
    return resp.status


async def test_a_reveal_needs_a_reason(
    private: tuple[TestClient, ReviewServices], engine: Engine
) -> None:
    client, _ = private
    csrf = await login(client, "alice", PW)
    page = await _conversation(client)
    assert await _reveal(client, csrf, page, "   ") == 400
    assert await _reveal(client, "x" * 43, page, "投诉核实") == 403
    forged = Pseudonymiser(b"not the key" * 3).seal(CUSTOMER)
    resp = await client.post(
        "/review/reveal", data={"csrf_token": csrf, "ref": forged, "reason": "投诉核实"}
    )
    assert resp.status == 400
    assert _reveals(engine) == []
    assert CUSTOMER not in await _conversation(client)


async def test_a_reveal_with_a_reason_shows_the_customer_to_that_reviewer_for_a_while(
    private: tuple[TestClient, ReviewServices], engine: Engine, clock: FakeClock
) -> None:
    client, _ = private
    csrf = await login(client, "alice", PW)
    assert await _reveal(client, csrf, await _conversation(client), "客户投诉需回电核实") == 303

    page = await _conversation(client)
    assert f"{CUSTOMER}（{NAME}）" in page
    assert 'name="ref"' not in page  # nobody left to reveal
    queue = await (await client.get("/review/")).text()
    assert CUSTOMER in queue

    [row] = _reveals(engine)
    assert (row["actor"], row["source"], row["target"]) == ("alice", "web", CUSTOMER)
    detail = json.loads(str(row["detail"]))
    assert detail == {"reason": "客户投诉需回电核实", "pseudonym": HIDDEN}

    other = await client.post("/review/logout", data={"csrf_token": csrf})
    assert other.status == 200
    await login(client, "bob", PW)
    assert CUSTOMER not in await _conversation(client)

    await login(client, "alice", PW)
    clock.advance(21 * 60)
    assert CUSTOMER not in await _conversation(client), "a reveal lasts reveal_minutes"


async def test_admins_see_who_revealed_what_and_reviewers_cannot(
    private: tuple[TestClient, ReviewServices],
) -> None:
    client, _ = private
    csrf = await login(client, "alice", PW)
    assert await _reveal(client, csrf, await _conversation(client), "核实退款争议") == 303
    denied = await client.get("/review/admin/reveals")
    assert denied.status == 403

    await client.post("/review/logout", data={"csrf_token": csrf})
    await login(client, "root", PW)
    assert CUSTOMER not in await _conversation(client), "admins see pseudonyms too"
    resp = await client.get("/review/admin/reveals")
    html = await resp.text()
    assert resp.status == 200
    assert "alice" in html and "核实退款争议" in html and CUSTOMER in html and HIDDEN in html
    mine = await (await client.get("/review/admin/reveals", params={"actor": "root"})).text()
    assert "核实退款争议" not in mine and "共 0 条" in mine


async def test_actions_work_on_sampled_cases(
    private: tuple[TestClient, ReviewServices], engine: Engine
) -> None:
    client, _ = private
    csrf = await login(client, "alice", PW)
    ids = [sample_id(WEEK, c) for c in QUIET]
    for case_id, action, comment in zip(
        ids,
        ("resolve", "false_positive", "escalate"),
        ("", "正常沟通", "疑似私下交易"),
        strict=True,
    ):
        resp = await client.post(
            f"/review/cases/{case_id}/{action}",
            data={"csrf_token": csrf, "comment": comment},
            allow_redirects=False,
        )
        assert resp.status == 303, await resp.text()
    with engine.connect() as conn:
        states = {
            r.alert_id: r.status
            for r in conn.execute(select(store.ALERTS).where(store.ALERTS.c.alert_id.in_(ids)))
        }
        outbox = conn.execute(select(store.OUTBOX)).all()
    assert states == {
        ids[0]: AlertStatus.RESOLVED.value,
        ids[1]: AlertStatus.FALSE_POSITIVE.value,
        ids[2]: AlertStatus.ESCALATED.value,
    }
    # Only the reviewer's 升级 sends a card; resolving or dismissing one sends nothing.
    assert [(r.alert_id, r.kind) for r in outbox] == [(ids[2], OutboxKind.ESCALATION)]


async def test_off_the_pages_show_customers_as_before(
    aiohttp_client: object, writer: GroupCommitWriter, clock: FakeClock
) -> None:
    client, _ = await _client(aiohttp_client, writer, clock, pseudonymise=False)
    csrf = await login(client, "alice", PW)
    html = await (await client.get("/review/")).text()
    assert f"{CUSTOMER}（{NAME}）" in html and HIDDEN not in html
    assert f'href="/review/conversations/kf%3Awk1%3A{CUSTOMER}#case-a1"' in html
    page = await _conversation(client)
    assert CUSTOMER in page and 'action="/review/reveal"' not in page
    resp = await client.post("/review/reveal", data={"csrf_token": csrf, "reason": "x"})
    assert resp.status == 404
