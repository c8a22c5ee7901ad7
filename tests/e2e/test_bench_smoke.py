"""Smoke tests of the benchmark harness, run as a user runs it: ``python -m bench ...``.

The harness checks its own internals (``python -m bench selftest``: sealing, message generation,
response framing, counting against the bare and peer servers). Here its figures are checked from
outside: a callback server of the test's own opens every callback the callback benchmark sends
with wechatpy, answers some with 403, and holds the benchmark's counts to its own; the alerts
benchmark's report must show its invariants at work. Never imports ``bench``; never starts our
own server.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import xmltodict
from aiohttp import web
from aiohttp.test_utils import TestServer
from wechatpy.enterprise.crypto import WeChatCrypto

from tests.support.paths import REPO

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]

# WeCom's published sample credentials, which the benchmarks seal with (design.md §3).
TOKEN = "QDG6eK"
CORP_ID = "wx5823bf96d3bd56c7"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
AGENT_ID = "1000002"
CALLBACK_PATH = "/wecom/callback"
#: One benchmark message in 20 carries a risk phrase; each holds one of these words.
RISK_EVERY, RISK_WORDS = 20, ("维权", "投诉", "12315")
TEXT_FIELDS = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "AgentID"]
BENCH_TIMEOUT_S = 120


def bench_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench", *args]


def bench_env() -> dict[str, str]:
    """The environment without DATABASE_URL: a benchmark picks storage from its options only."""
    return {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        bench_command(*args),
        cwd=REPO,
        env=bench_env(),
        capture_output=True,
        text=True,
        timeout=BENCH_TIMEOUT_S,
        check=False,
    )


def line_starting(output: str, prefix: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, output
    return lines[0]


def test_selftest_passes() -> None:
    done = run_bench("selftest")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "ok sealed_callbacks_open_with_wechatpy",
        "ok same_seed_same_messages_fresh_seal",
        "ok response_framing",
        "ok loadgen_against_bare_server",
        "ok loadgen_against_peer_counts_rejections",
    ]


class CheckingServer:
    """A WeCom callback endpoint that opens each callback with wechatpy and keeps what it saw.

    Every fifth MsgId is answered 403, so the benchmark has non-2xx answers to count.
    """

    def __init__(self) -> None:
        self.crypto = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
        self.received: Counter[str] = Counter()  # MsgId -> times received
        self.answered: Counter[int] = Counter()  # status -> answers
        self.messages: list[dict[str, str]] = []
        self.timestamps: set[int] = set()
        self.problems: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(CALLBACK_PATH, self.callback)
        return app

    async def callback(self, request: web.Request) -> web.Response:
        body = await request.read()
        q = request.query
        try:
            # wechatpy checks the signature and the corp id: the sealing is WeCom's.
            plain = self.crypto.decrypt_message(
                body, q["msg_signature"], q["timestamp"], q["nonce"]
            )
            envelope = xmltodict.parse(body)["xml"]
            assert list(envelope) == ["ToUserName", "Encrypt", "AgentID"]
            assert (envelope["ToUserName"], envelope["AgentID"]) == (CORP_ID, AGENT_ID)
            msg = xmltodict.parse(plain)["xml"]
            assert list(msg) == TEXT_FIELDS
            assert msg["CreateTime"] == q["timestamp"]
        except Exception as exc:  # recorded for the test, answered as a server error
            self.problems.append(f"{request.path_qs}: {exc!r}")
            return web.Response(status=500)
        self.received[msg["MsgId"]] += 1
        self.messages.append(msg)
        self.timestamps.add(int(q["timestamp"]))
        status = 403 if int(msg["MsgId"]) % 5 == 0 else 200
        self.answered[status] += 1
        return web.Response(status=status, text="success")


async def test_callback_bench_sends_real_callbacks_and_counts_every_answer(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    checker = CheckingServer()
    server = await aiohttp_server(checker.app())
    out = tmp_path / "callback.json"
    url = str(server.make_url(CALLBACK_PATH))
    started = time.time()
    proc = await asyncio.create_subprocess_exec(
        *bench_command("callback", "--quick", "--url", url, "--json", str(out)),
        cwd=REPO,
        env=bench_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    printed = (await asyncio.wait_for(proc.communicate(), BENCH_TIMEOUT_S))[0].decode()
    assert not checker.problems, checker.problems

    # A run with non-2xx answers is not a valid measurement, and the benchmark says so.
    assert proc.returncode == 1, printed
    assert "INVALID" in printed
    report = json.loads(out.read_text())
    settings = report["settings"]
    assert (settings["requests"], settings["warmup"], settings["url"]) == (200, 20, url)
    row = report["results"]["target"]
    timed, warmup = row["result"], row["warmup"]
    total = settings["requests"] + settings["warmup"]

    # Distinct callbacks, each sent once, each answer counted once with its status.
    assert len(checker.received) == total and set(checker.received.values()) == {1}
    assert (timed["requests"], warmup["requests"]) == (settings["requests"], settings["warmup"])
    statuses = Counter({int(s): n for s, n in timed["statuses"].items()})
    statuses.update({int(s): n for s, n in warmup["statuses"].items()})
    assert statuses == checker.answered and set(statuses) == {200, 403}
    assert (timed["ok"], timed["errors"]) == (timed["statuses"]["200"], timed["statuses"]["403"])
    assert not timed["timed_out"]
    assert 0 < timed["p50_ms"] <= timed["p99_ms"]
    assert timed["rps"] > 0

    # Text messages as WeCom writes them, sealed when sent.
    assert all(started - 1 <= t <= time.time() + 1 for t in checker.timestamps)
    for msg in checker.messages:
        assert (msg["ToUserName"], msg["MsgType"], msg["AgentID"]) == (CORP_ID, "text", AGENT_ID)
        assert 20 <= len(msg["Content"]) <= 60
    risky = sum(any(w in m["Content"] for w in RISK_WORDS) for m in checker.messages)
    assert risky == total // RISK_EVERY
    assert len({m["FromUserName"] for m in checker.messages}) > 50
    assert urlsplit(url).path == CALLBACK_PATH


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_alerts_bench_quick_keeps_member_limits_and_loses_nothing(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    out = tmp_path / "alerts.json"
    argv = ["alerts", "--quick", "--json", str(out)]
    if backend == "postgresql":
        argv += ["--database-url", str(request.getfixturevalue("pg_url"))]
    done = run_bench(*argv)
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, Any] = json.loads(out.read_text())
    assert report["settings"]["database_url"] == (backend == "postgresql")
    assert report["backend"].lower().startswith(backend)

    assert report["ok"], report["failures"]
    assert report["archived"] == report["messages"] == 300
    # Every alert reached each recipient (and escalate_to) by a card or a digest.
    assert report["covered"] == report["pairs"] >= report["alerts"] > 0
    assert report["escalated"] == report["alerts"]  # nobody claims
    # The scenario makes the policy and the rate limit do their jobs, not just pass through.
    decisions = report["decisions"]
    assert decisions["new"] and decisions["join"] and decisions["renotify"]
    assert report["held"] > 0 and report["sent"]["digest"] > 0 and report["sent"]["escalation"] > 0
    recipients = report["recipients"]
    assert max(r["max_per_minute"] for r in recipients) == 20  # the budget, used to the full
    assert all(r["max_per_minute"] <= 30 and r["max_per_hour"] <= 1000 for r in recipients)
    assert line_starting(done.stdout, "nothing lost").endswith("OK")
