"""What the browser tests share: Debian's chromium driven by Playwright, the skip when it is
missing, a page that records console errors and failed responses, and ``run_bot.py`` as a
subprocess (to add reviewers and send messages to the server under test)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import REPO

CHROMIUM = os.environ.get("SENTINEL_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = REPO / "docs" / "screenshots"

BROWSER_MARKS = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"browser test skipped: no chromium at {CHROMIUM} (make browser installs it)",
    ),
]
"""The browser test modules' ``pytestmark``."""

_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def run_bot(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``run_bot.py ARGS --config CONFIG``, its output captured."""
    return subprocess.run(
        [sys.executable, str(REPO / "run_bot.py"), *args, "--config", str(config)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
    )


def add_reviewer(config: Path, name: str, password: str) -> None:
    """``users add NAME --role reviewer``, the password given twice on stdin."""
    added = run_bot(config, "users", "add", name, "--role", "reviewer", stdin=f"{password}\n" * 2)
    assert added.returncode == 0, added.stderr


def send_texts(config: Path, base: str, texts: tuple[str, ...], sender: str = "zhangsan") -> None:
    """Each text through ``simulate`` to the callback of the server at ``base``."""
    for text in texts:
        url = f"{base}/wecom/callback"
        sent = run_bot(config, "simulate", "--text", text, "--from", sender, "--url", url)
        assert sent.returncode == 0, sent.stdout + sent.stderr


def launch(pw: Any) -> Any:
    """Debian's chromium, headless, without sandbox or background traffic."""
    return pw.chromium.launch(executable_path=CHROMIUM, args=_ARGS)


def open_page(browser: Any, *, height: int = 860) -> tuple[Any, list[str]]:
    """A zh-CN page 1280 wide, and the list its console errors and 4xx/5xx responses go to."""
    page = browser.new_page(viewport={"width": 1280, "height": height}, locale="zh-CN")
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on(
        "response",
        lambda resp: errors.append(f"{resp.status} {resp.url}") if resp.status >= 400 else None,
    )
    return page, errors
