"""The review web in a real browser: Playwright driving Debian's chromium against `run_bot.py serve`.

A reviewer logs in, opens a flagged conversation from the queue, sees the hit marked, claims the
case, resolves it with a comment, and sees the queue update. The screenshots it takes are the ones
the README shows (docs/screenshots/). Skipped, saying why, when chromium is not installed
(``make browser`` installs it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.app import ServerProcess, free_port, write_config
from tests.support.browser import (
    BROWSER_MARKS,
    SCREENSHOTS,
    add_reviewer,
    launch,
    open_page,
    send_texts,
)

PASSWORD = "reviewer-password-1"

pytestmark = BROWSER_MARKS


@pytest.fixture
def server(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[ServerProcess, Path]]:
    port = free_port()
    config = write_config(tmp_path, sqlite_url, port=port, extra='[alerts]\nmanagers = ["mgr1"]\n')
    add_reviewer(config, "li", PASSWORD)
    proc = ServerProcess(config, port)
    try:
        proc.wait_ready()
        send_texts(config, proc.base, ("你好，请问发货了吗", "再不退款我就去12315维权", "谢谢"))
        yield proc, config
    finally:
        proc.close()


def test_reviewer_resolves_a_flagged_conversation_in_chromium(
    server: tuple[ServerProcess, Path],
) -> None:
    from playwright.sync_api import expect, sync_playwright

    proc, _config = server
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page, errors = open_page(browser, height=860)
            page.goto(f"{proc.base}/review/")
            expect(page).to_have_url(f"{proc.base}/review/login?next=/review/")
            page.fill("input[name=username]", "li")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("待审队列")
            link = page.locator("a.case-link", has_text="zhangsan")
            expect(link).to_have_count(1)
            page.screenshot(path=str(SCREENSHOTS / "review-queue.png"), full_page=True)
            link.click()
            expect(page.locator("mark", has_text="维权")).to_be_visible()
            expect(page.locator("mark", has_text="12315")).to_be_visible()
            page.click("button:text-is('认领')")
            expect(page.locator(".flash.ok")).to_have_text("已认领该案件")
            expect(page.locator(".case .owner")).to_have_text("认领人：li")
            page.fill(".dispose textarea[name=comment]", "已电话联系客户，退款已处理")
            page.screenshot(path=str(SCREENSHOTS / "review-conversation.png"), full_page=True)
            page.click("button:text-is('已处理')")
            expect(page.locator(".flash.ok")).to_have_text("已标记为已处理")
            expect(page.locator(".history")).to_contain_text("已电话联系客户，退款已处理")
            page.click("text=← 返回待审队列")
            expect(page.locator("a.case-link")).to_have_count(0)
            expect(page.locator(".empty")).to_have_text("没有符合条件的案件。")
            # Nothing was blocked by the Content-Security-Policy (it would log a console error),
            # and every resource the pages asked for was there.
            assert errors == []
        finally:
            browser.close()
