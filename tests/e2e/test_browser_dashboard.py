"""The dashboard (统计概览) in a real browser: Playwright driving Debian's chromium against
`run_bot.py serve`, over an archive seeded with a month of realistic Chinese cases.

A reviewer logs in, opens the dashboard, sees its five charts drawn as inline SVG with nothing
blocked by the Content-Security-Policy, clicks one day's bar of one severity and lands on the
queue listing exactly those cases. The screenshot it takes is docs/screenshots/dashboard.png
(regenerate it with ``.venv/bin/pytest tests/e2e/test_browser_dashboard.py``). Skipped, saying why,
when chromium is not installed (``make browser`` installs it).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from monitor.alerts import store
from monitor.alerts.policy import AlertKind, AlertStatus, OpenAlert
from monitor.archive import make_engine
from rules.models import Severity
from tests.support.app import ServerProcess, free_port, write_config
from tests.support.browser import (
    BROWSER_MARKS,
    SCREENSHOTS,
    add_reviewer,
    launch,
    open_page,
)

PASSWORD = "reviewer-password-1"

pytestmark = BROWSER_MARKS

CUSTOMER_WORDS = (("维权", Severity.HIGH), ("投诉", Severity.HIGH), ("12315", Severity.CRITICAL))
STAFF_WORDS = (
    ("红包", Severity.MEDIUM),
    ("小费", Severity.MEDIUM),
    ("私下转账", Severity.CRITICAL),
)
CUSTOMER_LOW = (("退款", Severity.LOW), ("差评", Severity.LOW))
STAFF = (
    ("zhangwei", "张伟"),
    ("lina", "李娜"),
    ("wangfang", "王芳"),
    ("liuyang", ""),
    ("chenjing", "陈静"),
)


def realistic_cases(today: datetime, n: int = 160) -> list[OpenAlert]:
    """A month of cases: more customer complaints than staff misconduct, quieter weekends, most
    older cases closed (some as 误报), severe ones closed faster."""
    rnd = random.Random(2026)
    cases = []
    for i in range(n):
        days_ago = int(30 * rnd.random() ** 1.5)  # recent days busier
        first_at = today - timedelta(days=days_ago, minutes=rnd.randrange(10 * 60))
        if first_at.weekday() >= 5 and rnd.random() < 0.6:  # quieter weekends: draw again
            days_ago = int(30 * rnd.random() ** 1.5)
            first_at = today - timedelta(days=days_ago, minutes=rnd.randrange(10 * 60))
        if first_at.date() < (today - timedelta(days=29)).date():
            first_at += timedelta(hours=12)
        staff, name = rnd.choice(STAFF)
        if rnd.random() < 0.3:
            kind = AlertKind.STAFF_MISCONDUCT
            hits = rnd.sample(STAFF_WORDS, rnd.choice((1, 1, 2)))
        else:
            kind = AlertKind.CUSTOMER_RISK
            hits = rnd.sample(CUSTOMER_WORDS + CUSTOMER_LOW, rnd.choice((1, 1, 1, 2)))
        severity = max(s for _w, s in hits)
        status = AlertStatus.OPEN
        closed_at = None
        if days_ago > 1 or rnd.random() < 0.3:
            status = rnd.choices(
                [AlertStatus.RESOLVED, AlertStatus.FALSE_POSITIVE, AlertStatus.CLAIMED],
                weights=[6, 2 + 4 * (hits[0][0] in ("退款", "差评", "小费")), 1],
            )[0]
        if status in (AlertStatus.RESOLVED, AlertStatus.FALSE_POSITIVE):
            hours = rnd.lognormvariate(1.2 - 0.35 * severity, 0.9)
            closed_at = min(first_at + timedelta(hours=hours), today)
        cases.append(
            OpenAlert(
                alert_id=f"demo-{i}",
                conversation_id=f"kf:wkDemo:wmCustomer{i:03d}",
                kind=kind,
                severity=severity,
                words=tuple(w for w, _s in hits),
                count=rnd.randint(1, 5),
                first_at=first_at,
                last_at=first_at,
                latest_text="客户说：再不退款我就去12315维权",
                recipients=("mgr1",),
                customer_id=f"wmCustomer{i:03d}",
                customer_name=rnd.choice(("王先生", "李女士", "赵先生", "")),
                staff_userid=staff,
                staff_name=name,
                status=status,
                claimed_by="li" if status is AlertStatus.CLAIMED else "",
                closed_by="li" if closed_at else "",
                closed_at=closed_at,
            )
        )
    return cases


@pytest.fixture
def server(tmp_path: Path, sqlite_url: str) -> Iterator[ServerProcess]:
    port = free_port()
    config = write_config(tmp_path, sqlite_url, port=port, extra='[alerts]\nmanagers = ["mgr1"]\n')
    add_reviewer(config, "li", PASSWORD)
    engine = make_engine(sqlite_url)
    try:
        with engine.begin() as conn:
            for case in realistic_cases(datetime.now(UTC)):
                store.insert_alert(
                    conn, case, latest_message_id=None, cards_sent=1, rules_version="r1"
                )
    finally:
        engine.dispose()
    proc = ServerProcess(config, port)
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.close()


def test_dashboard_charts_render_and_a_bar_opens_the_filtered_queue(server: ServerProcess) -> None:
    from playwright.sync_api import expect, sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page, errors = open_page(browser, height=900)
            page.goto(f"{server.base}/review/dashboard")
            expect(page).to_have_url(f"{server.base}/review/login?next=/review/dashboard")
            page.fill("input[name=username]", "li")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("统计概览")
            expect(page.locator("svg.chart")).to_have_count(5)
            bars = page.locator("#per-day svg.chart a rect")
            assert bars.count() > 10
            expect(page.locator("#words svg.chart a rect").first).to_be_visible()
            expect(page.locator("#false-positives svg.chart a rect").first).to_be_visible()
            # Charts are drawn: a bar has a real size on screen.
            box = bars.first.bounding_box()
            assert box is not None and box["height"] > 0 and box["width"] > 0
            page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

            # The tallest segment of the per-day chart: its tooltip says how many cases it holds.
            heights = [
                float(h or 0)
                for h in bars.evaluate_all("rs => rs.map(r => r.getAttribute('height'))")
            ]
            tallest = bars.nth(heights.index(max(heights)))
            title = tallest.locator("title").text_content() or ""
            found = re.search(r"：(\d+) 个案件", title)
            assert found, title
            count = int(found.group(1))
            href = tallest.locator("xpath=..").get_attribute("href") or ""
            query = parse_qs(urlsplit(href).query)
            assert query["since"] == query["until"] and "exact_severity" in query
            tallest.click()
            expect(page.locator("h1")).to_have_text("待审队列")
            assert urlsplit(page.url).query == urlsplit(href).query
            expect(page.locator("a.case-link")).to_have_count(count)
            expect(page.locator("p.summary")).to_have_text(f"共 {count} 个案件")
            label = Severity(int(query["exact_severity"][0])).label
            expect(page.locator("table.queue .sev", has_text=label)).to_have_count(count)
            # Nothing was blocked by the Content-Security-Policy (it would log a console error),
            # and every resource the pages asked for was there.
            assert errors == []
        finally:
            browser.close()
