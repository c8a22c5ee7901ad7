"""The dashboard's figures on both backends, and its page: login, audit row, charts, links.

A seeded archive of cases over several days, severities, words, staff members and states; every
expected figure is computed here in Python from the seeded cases (Counter, statistics), never
written down by hand.
"""

from __future__ import annotations

import random
import re
import statistics
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import Connection, Engine, select

from monitor.alerts import store
from monitor.alerts.policy import AlertKind, AlertStatus, OpenAlert
from monitor.archive import GroupCommitWriter
from monitor.archive.audit import AUDIT
from monitor.review.dashboard import DashboardRange, load_dashboard
from monitor.review.services import ReviewServices
from rules.models import Severity
from tests.support.review import FAST_HASHER, add_reviewer, login, review_services, review_test_app
from tests.unit.monitor.review.conftest import FakeClock

SINCE = date(2026, 11, 20)
UNTIL = date(2026, 11, 29)
RANGE = DashboardRange(SINCE, UNTIL)
WORDS = ("维权", "投诉", "12315", "红包", "小费", "私下转账", "<b>&'\"")
STAFF = (("zhangwei", "张伟"), ("lina", "李娜"), ("wangfang", ""), ("evil", "<script>x</script>"))
CLOSED = (AlertStatus.RESOLVED, AlertStatus.FALSE_POSITIVE)
PASSWORD = "alice-password-1"
SVG_NS = "{http://www.w3.org/2000/svg}"


def seeded_alerts() -> list[OpenAlert]:
    """About 200 cases inside the range (edges included) and a few just outside it."""
    rnd = random.Random(17)
    alerts: list[OpenAlert] = []
    starts = [
        datetime.combine(SINCE, datetime.min.time(), UTC),  # the first instant of the range
        datetime.combine(UNTIL, datetime.max.time(), UTC),  # its last microsecond
        datetime.combine(SINCE, datetime.min.time(), UTC) - timedelta(microseconds=1),  # out
        datetime.combine(UNTIL + timedelta(days=1), datetime.min.time(), UTC),  # out
    ]
    starts += [
        datetime.combine(SINCE, datetime.min.time(), UTC)
        + timedelta(seconds=rnd.randrange(10 * 86400))
        for _ in range(200)
    ]
    for n, first_at in enumerate(starts):
        kind = rnd.choice((AlertKind.CUSTOMER_RISK, AlertKind.STAFF_MISCONDUCT))
        staff, name = rnd.choice(STAFF)
        status = rnd.choice(list(AlertStatus))
        closed_at = (
            first_at + timedelta(seconds=rnd.randrange(30, 3 * 86400)) if status in CLOSED else None
        )
        alerts.append(
            OpenAlert(
                alert_id=f"a{n}",
                conversation_id=f"kf:wk1:wm{n}",
                kind=kind,
                severity=rnd.choice(list(Severity)),
                words=tuple(rnd.sample(WORDS, rnd.choice((1, 1, 2)))),
                count=rnd.randint(1, 6),
                first_at=first_at,
                last_at=first_at,
                latest_text="…",
                recipients=("mgr1",),
                customer_id=f"wm{n}",
                staff_userid=staff,
                staff_name=name if rnd.random() < 0.7 else "",
                status=status,
                closed_by="alice" if closed_at else "",
                closed_at=closed_at,
            )
        )
    return alerts


ALERTS = seeded_alerts()
IN_RANGE = [a for a in ALERTS if SINCE <= a.first_at.date() <= UNTIL]


def insert_alerts(conn: Connection, alerts: list[OpenAlert]) -> None:
    for alert in alerts:
        store.insert_alert(conn, alert, latest_message_id=None, cards_sent=0, rules_version="r1")


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    with engine.begin() as conn:
        insert_alerts(conn, ALERTS)
    return engine


def p90(values: list[float]) -> float:
    return (
        statistics.quantiles(values, n=10, method="inclusive")[8] if len(values) > 1 else values[0]
    )


# ---- the queries, on SQLite and PostgreSQL --------------------------------------------------


def test_edges_of_the_range_are_in_and_just_outside_are_out() -> None:
    assert len(IN_RANGE) == len(ALERTS) - 2


def test_cases_per_day_and_severity(seeded: Engine) -> None:
    with seeded.connect() as conn:
        data = load_dashboard(conn, RANGE)
    expected = Counter((a.first_at.date(), a.severity) for a in IN_RANGE)
    assert data.total == len(IN_RANGE)
    assert {(r.day, r.severity): r.cases for r in data.per_day} == dict(expected)


def test_top_words_by_hits(seeded: Engine) -> None:
    with seeded.connect() as conn:
        data = load_dashboard(conn, RANGE, top=5)
    hits: Counter[str] = Counter()
    cases: Counter[str] = Counter()
    for a in IN_RANGE:
        for w in a.words:
            hits[w] += a.count
            cases[w] += 1
    expected = sorted(hits, key=lambda w: (-hits[w], w))[:5]
    assert [(w.word, w.hits, w.cases) for w in data.words] == [
        (w, hits[w], cases[w]) for w in expected
    ]


def test_top_staff_by_hits_with_display_names(seeded: Engine) -> None:
    with seeded.connect() as conn:
        data = load_dashboard(conn, RANGE)
    mine = [a for a in IN_RANGE if a.kind is AlertKind.STAFF_MISCONDUCT]
    hits: Counter[str] = Counter()
    names: dict[str, str] = defaultdict(str)
    for a in mine:
        hits[a.staff_userid] += a.count
        names[a.staff_userid] = max(names[a.staff_userid], a.staff_name)
    expected = sorted(hits, key=lambda u: (-hits[u], u))
    assert [(s.userid, s.name, s.hits) for s in data.staff] == [
        (u, names[u], hits[u]) for u in expected
    ]
    assert {s.name for s in data.staff} >= {"张伟", "李娜"}
    assert [s.cases for s in data.staff] == [
        sum(1 for a in mine if a.staff_userid == u) for u in expected
    ]


def test_median_and_p90_time_to_resolve(seeded: Engine) -> None:
    with seeded.connect() as conn:
        data = load_dashboard(conn, RANGE)
    closed = [a for a in IN_RANGE if a.status in CLOSED]
    by_severity: dict[Severity | None, list[float]] = defaultdict(list)
    for a in closed:
        assert a.closed_at is not None
        seconds = (a.closed_at - a.first_at).total_seconds()
        by_severity[a.severity].append(seconds)
        by_severity[None].append(seconds)
    got = {r.severity: r for r in data.resolve_times}
    assert list(got) == [*sorted((s for s in by_severity if s), reverse=True), None]
    for severity, values in by_severity.items():
        r = got[severity]
        assert r.closed == len(values)
        assert r.median_s == pytest.approx(statistics.median(values), abs=0.01)
        assert r.p90_s == pytest.approx(p90(values), abs=0.01)


def test_percentiles_of_small_groups(engine: Engine) -> None:
    """Groups of 1, 2, 3 and 11 cases (odd, even, single): the interpolation matches statistics."""
    t0 = datetime(2026, 11, 21, 8, tzinfo=UTC)
    sizes = {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3, Severity.CRITICAL: 11}
    durations = {s: [float(37 * i * i + 5 + s) for i in range(n)] for s, n in sizes.items()}
    alerts = [
        OpenAlert(
            alert_id=f"s{severity}-{i}",
            conversation_id=f"c{severity}-{i}",
            kind=AlertKind.CUSTOMER_RISK,
            severity=severity,
            words=("维权",),
            count=1,
            first_at=t0,
            last_at=t0,
            latest_text="",
            recipients=(),
            status=AlertStatus.RESOLVED,
            closed_at=t0 + timedelta(seconds=d),
        )
        for severity, values in durations.items()
        for i, d in enumerate(reversed(values))
    ]
    with engine.begin() as conn:
        insert_alerts(conn, alerts)
    with engine.connect() as conn:
        data = load_dashboard(conn, RANGE)
    everything = [d for values in durations.values() for d in values]
    expected = [*((s, durations[s]) for s in sorted(sizes, reverse=True)), (None, everything)]
    assert [(r.severity, r.closed) for r in data.resolve_times] == [
        (s, len(v)) for s, v in expected
    ]
    for r, (_s, values) in zip(data.resolve_times, expected, strict=True):
        assert r.median_s == pytest.approx(statistics.median(values), abs=0.01)
        assert r.p90_s == pytest.approx(p90(values), abs=0.01)


def test_false_positive_rate_per_word_over_the_threshold(seeded: Engine) -> None:
    with seeded.connect() as conn:
        data = load_dashboard(conn, RANGE, fp_min_closed=12)
    closed: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    for a in IN_RANGE:
        if a.status in CLOSED:
            for w in a.words:
                closed[w] += 1
                fp[w] += a.status is AlertStatus.FALSE_POSITIVE
    kept = {w for w in closed if closed[w] >= 12}
    assert kept and kept != set(closed)  # the seed has words on both sides of the threshold
    assert data.fp_min_closed == 12
    assert {(r.word, r.closed, r.false_positive) for r in data.false_positives} == {
        (w, closed[w], fp[w]) for w in kept
    }
    rates = [r.rate for r in data.false_positives]
    assert rates == sorted(rates, reverse=True)
    for r in data.false_positives:
        assert r.rate == pytest.approx(fp[r.word] / closed[r.word])


def test_an_empty_archive_has_no_figures(engine: Engine) -> None:
    with engine.connect() as conn:
        data = load_dashboard(conn, RANGE)
    assert (data.total, data.per_day, data.words, data.staff) == (0, [], [], [])
    assert (data.resolve_times, data.false_positives) == ([], [])


# ---- the range picker -----------------------------------------------------------------------


def test_range_from_the_query() -> None:
    today = date(2026, 12, 5)
    assert DashboardRange.from_query({}, today) == DashboardRange(date(2026, 11, 6), today, 30)
    assert DashboardRange.from_query({"days": "7"}, today).since == date(2026, 11, 29)
    assert DashboardRange.from_query({"days": "90"}, today).length == 90
    assert DashboardRange.from_query({"days": "5"}, today).days == 30
    assert DashboardRange.from_query({"days": "x"}, today).days == 30
    dates = DashboardRange.from_query({"since": "2026-10-01", "until": "2026-10-03"}, today)
    assert (dates.since, dates.until, dates.days, dates.length) == (
        date(2026, 10, 1),
        date(2026, 10, 3),
        None,
        3,
    )
    swapped = DashboardRange.from_query({"since": "2026-10-03", "until": "2026-10-01"}, today)
    assert (swapped.since, swapped.until) == (date(2026, 10, 1), date(2026, 10, 3))
    assert DashboardRange.from_query({"until": "2026-10-30"}, today).since == date(2026, 10, 1)
    assert DashboardRange.from_query({"since": "2000-01-01"}, today).length == 366
    assert DashboardRange.from_query({"since": "bad"}, today).until == today


# ---- the page ---------------------------------------------------------------------------------


@pytest.fixture
async def services(writer: GroupCommitWriter, clock: FakeClock) -> ReviewServices:
    await add_reviewer(writer, "alice", PASSWORD, hasher=FAST_HASHER)
    clock.now = datetime.combine(UNTIL, datetime.min.time(), UTC) + timedelta(hours=10)
    return review_services(writer, clock=clock)


@pytest.fixture
async def client(aiohttp_client, services: ReviewServices) -> TestClient:
    return await aiohttp_client(review_test_app(services))


async def test_login_required(client: TestClient) -> None:
    resp = await client.get("/review/dashboard", allow_redirects=False)
    assert resp.status in (302, 303)
    assert resp.headers["Location"].startswith("/review/login?next=")


async def test_empty_archive_page(client: TestClient, engine: Engine) -> None:
    await login(client, "alice", PASSWORD)
    resp = await client.get("/review/dashboard")
    html = await resp.text()
    assert resp.status == 200
    assert "暂无数据" in html
    assert "<svg" not in html


def svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(m) for m in re.findall(r"<svg .*?</svg>", html, re.S)]


async def test_page_shows_charts_audits_the_view_and_links_to_the_queue(
    client: TestClient, seeded: Engine
) -> None:
    await login(client, "alice", PASSWORD)
    resp = await client.get("/review/dashboard?since=2026-11-20&until=2026-11-29")
    html = await resp.text()
    assert resp.status == 200
    assert "style=" not in html and "<style" not in html and "<script" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html  # a hostile staff name stays text
    charts = svgs(html)
    assert len(charts) == 5
    for svg in charts:
        assert svg.find(f"{SVG_NS}title") is not None
    assert "共 <a href=" in html and f">{len(IN_RANGE)} 个案件</a>" in html

    with seeded.connect() as conn:
        rows = conn.execute(select(AUDIT).where(AUDIT.c.target == "dashboard")).all()
    assert [(r.actor, r.action, r.source) for r in rows] == [("alice", "view", "web")]
    assert '"since": "2026-11-20"' in rows[0].detail

    # Follow a day's bar of one severity: the queue lists exactly that day's cases of it.
    per_day = charts[0]
    links = [a.get("href") for a in per_day.iter(f"{SVG_NS}a")]
    expected = Counter((a.first_at.date(), a.severity) for a in IN_RANGE)
    assert len(links) == len(expected)
    (day, severity), count = expected.most_common(1)[0]
    href = next(h for h in links if f"exact_severity={severity.value}" in h and f"since={day}" in h)
    assert parse_qs(urlsplit(href).query) == {
        "state": ["all"],
        "exact_severity": [str(severity.value)],
        "since": [day.isoformat()],
        "until": [day.isoformat()],
    }
    queue = await (await client.get(href)).text()
    listed = set(re.findall(r'href="/review/conversations/([^"#]+)#case-', queue))
    assert listed == {
        a.conversation_id.replace(":", "%3A")
        for a in IN_RANGE
        if a.first_at.date() == day and a.severity is severity
    }
    assert f"共 {count} 个案件" in queue

    # A word's bar: the queue's count of that word's cases is the dashboard's.
    words = charts[1]
    first = next(words.iter(f"{SVG_NS}a"))
    word = parse_qs(urlsplit(first.get("href", "")).query)["word"][0]
    cases = sum(1 for a in IN_RANGE if word in a.words)
    queue = await (await client.get(first.get("href", ""))).text()
    assert f"共 {cases} 个案件" in queue


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_hostile_word_is_escaped_in_chart_and_table(
    client: TestClient, engine: Engine
) -> None:
    t0 = datetime(2026, 11, 25, 8, tzinfo=UTC)
    hostile = '"><script>alert(1)</script>'
    alert = OpenAlert(
        alert_id="h1",
        conversation_id="c-h1",
        kind=AlertKind.STAFF_MISCONDUCT,
        severity=Severity.CRITICAL,
        words=(hostile,),
        count=3,
        first_at=t0,
        last_at=t0,
        latest_text="",
        recipients=(),
        staff_userid="u<1>",
        staff_name="</svg><img src=x>",
    )
    with engine.begin() as conn:
        insert_alerts(conn, [alert])
    await login(client, "alice", PASSWORD)
    html = await (await client.get("/review/dashboard?days=30")).text()
    assert "<script>" not in html and "<img" not in html
    charts = svgs(html)
    assert len(charts) == 3  # per day, words, staff (nothing closed yet)
    texts = [t.text or "" for svg in charts for t in svg.iter(f"{SVG_NS}text")]
    titles = [t.text or "" for svg in charts for t in svg.iter(f"{SVG_NS}title")]
    assert hostile[:13] + "…" in texts  # parsed back: the label is the very text, as text
    assert any(hostile in t for t in titles)
    assert any("</svg><img src=x>（u<1>）" in t for t in titles)
