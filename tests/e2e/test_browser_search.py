"""The archive search in a real browser: Playwright driving Debian's chromium against
`run_bot.py serve`.

A reviewer logs in, searches 维权, sees the result with the match marked, and clicks through to
the conversation page at that message. Skipped, saying why, when chromium is not installed
(``make browser`` installs it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.app import ServerProcess, free_port, write_config
from tests.support.browser import (
    BROWSER_MARKS,
    add_reviewer,
    launch,
    open_page,
    send_texts,
)

PASSWORD = "reviewer-password-1"

pytestmark = BROWSER_MARKS


@pytest.fixture
def server(tmp_path: Path, sqlite_url: str) -> Iterator[ServerProcess]:
    port = free_port()
    config = write_config(tmp_path, sqlite_url, port=port)
    add_reviewer(config, "li", PASSWORD)
    proc = ServerProcess(config, port)
    try:
        proc.wait_ready()
        send_texts(config, proc.base, ("你好，请问发货了吗", "我要维权了<b>!</b>", "谢谢"))
        yield proc
    finally:
        proc.close()


def test_reviewer_searches_and_opens_the_message_in_chromium(server: ServerProcess) -> None:
    from playwright.sync_api import expect, sync_playwright

    proc = server
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page, errors = open_page(browser, height=860)
            page.goto(f"{proc.base}/review/search")
            page.fill("input[name=username]", "li")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("搜索聊天记录")
            page.fill("input[name=q]", "维权")
            page.click("form.search button[type=submit]")
            expect(page.locator("p.summary strong")).to_have_text("1")
            result = page.locator("li.result")
            expect(result).to_have_count(1)
            expect(result.locator("mark")).to_have_text("维权")
            expect(result.locator("p.text")).to_have_text("我要维权了<b>!</b>")
            result.locator("a.open").click()
            expect(page).to_have_url(re.compile(r"/review/conversations/.+\?at=\d+#m\d+$"))
            focused = page.locator("li.msg[aria-current=true]")
            expect(focused).to_have_count(1)
            expect(focused.locator(".text")).to_contain_text("我要维权了<b>!</b>")
            page.go_back()
            expect(page.locator("li.result")).to_have_count(1)
            page.fill("input[name=q]", "火星文")
            page.click("form.search button[type=submit]")
            expect(page.locator("p.empty")).to_have_text("没有找到包含“火星文”的消息。")
            assert errors == []
        finally:
            browser.close()
