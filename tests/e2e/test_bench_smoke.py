"""Smoke test of the benchmark harness: the sealed messages are real WeCom callbacks, and the load
generator measures a server without errors. Fast, in-process, and never starts our own server."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import xmltodict
from aiohttp import web
from aiohttp.test_utils import TestServer
from wechatpy.enterprise.crypto import WeChatCrypto

from bench import alerts
from bench.alerts_sim import simulate
from bench.loadgen import _response_end, render_requests, run_load
from bench.messages import (
    CALLBACK_PATH,
    RISK_EVERY,
    RISK_PHRASES,
    SAMPLE_AES_KEY,
    SAMPLE_AGENT_ID,
    SAMPLE_CORP_ID,
    SAMPLE_TOKEN,
    SealedCallback,
    generate_callbacks,
)
from bench.servers import bare, peer

NOW = 1_700_000_000
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


def _query(cb: SealedCallback) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(cb.target).query))


def test_callbacks_are_distinct_and_open_with_wechatpy() -> None:
    batch = generate_callbacks(200, seed=7, timestamp=NOW)
    assert len({c.msg_id for c in batch}) == len({c.body for c in batch}) == 200

    crypto = WeChatCrypto(SAMPLE_TOKEN, SAMPLE_AES_KEY, SAMPLE_CORP_ID)
    risky = 0
    for cb in batch:
        assert urlsplit(cb.target).path == CALLBACK_PATH
        q = _query(cb)
        assert q["timestamp"] == str(NOW)
        # wechatpy checks the signature and the corp id, so this also proves the sealing is WeCom's.
        plain = crypto.decrypt_message(cb.body, q["msg_signature"], q["timestamp"], q["nonce"])
        assert plain == cb.inner_xml
        msg = xmltodict.parse(plain)["xml"]
        assert list(msg) == [
            "ToUserName",
            "FromUserName",
            "CreateTime",
            "MsgType",
            "Content",
            "MsgId",
            "AgentID",
        ]
        assert msg["ToUserName"] == SAMPLE_CORP_ID
        assert msg["CreateTime"] == str(NOW)
        assert msg["MsgType"] == "text"
        assert msg["MsgId"] == cb.msg_id
        assert msg["AgentID"] == SAMPLE_AGENT_ID
        assert 20 <= len(msg["Content"]) <= 60
        risky += any(p in msg["Content"] for p in RISK_PHRASES)
    assert risky == 200 // RISK_EVERY
    assert len({xmltodict.parse(c.inner_xml)["xml"]["FromUserName"] for c in batch}) > 50

    envelope = xmltodict.parse(batch[0].body)["xml"]
    assert list(envelope) == ["ToUserName", "Encrypt", "AgentID"]
    assert (envelope["ToUserName"], envelope["AgentID"]) == (SAMPLE_CORP_ID, SAMPLE_AGENT_ID)


def test_same_seed_same_messages_fresh_seal() -> None:
    first = generate_callbacks(20, seed=1, timestamp=NOW)
    later = generate_callbacks(20, seed=1, timestamp=NOW + 60)
    assert [c.msg_id for c in first] == [c.msg_id for c in later]
    assert [c.inner_xml.replace(str(NOW), "T") for c in first] == [
        c.inner_xml.replace(str(NOW + 60), "T") for c in later
    ]
    assert all(a.body != b.body for a, b in zip(first, later, strict=True))


def test_response_framing() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
    assert _response_end(bytearray(head + b"Content-Length: 7\r\n\r\nsucc")) is None
    whole = head + b"Content-Length: 7\r\n\r\nsuccess"
    assert _response_end(bytearray(whole + b"HTTP/1.1")) == (200, len(whole))
    chunked = head + b"Transfer-Encoding: chunked\r\n\r\n7\r\nsuccess\r\n0\r\n\r\n"
    assert _response_end(bytearray(chunked[:-2])) is None
    assert _response_end(bytearray(chunked)) == (200, len(chunked))


async def _load(server: TestServer, batch: list[SealedCallback], concurrency: int = 8) -> Any:
    pairs = [(c.target, c.body) for c in batch]
    requests = render_requests(pairs, str(server.host), int(server.port or 0))
    return await run_load(str(server.host), int(server.port or 0), requests, concurrency, 10.0)


async def test_loadgen_against_bare_server(aiohttp_server: ServerFactory) -> None:
    server = await aiohttp_server(bare.create_app())
    result = await _load(server, generate_callbacks(48, seed=3))
    assert (result.requests, result.ok, result.errors) == (48, 48, 0)
    assert result.statuses == {200: 48}
    assert not result.timed_out
    assert 0 < result.p50_ms <= result.p99_ms
    assert result.rps > 0


async def test_loadgen_against_peer_counts_rejections(aiohttp_server: ServerFactory) -> None:
    batch = generate_callbacks(40, seed=5)  # timestamps of now: peer ignores them anyway
    app = peer.create_app()
    server = await aiohttp_server(app)
    result = await _load(server, batch, concurrency=4)
    assert (result.ok, result.errors) == (40, 0)
    assert app[peer.FLAGGED]["flagged"] == 40 // RISK_EVERY

    # Signed with another token: every request is a 403, and the harness reports each one.
    forged = generate_callbacks(10, seed=5, token="not-the-token")
    result = await _load(server, forged, concurrency=4)
    assert (result.ok, result.errors, result.statuses) == (0, 10, {403: 10})


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_alerts_bench_quick_keeps_member_limits_and_loses_nothing(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    parser = argparse.ArgumentParser()
    alerts.add_arguments(parser)
    argv = ["--quick"]
    if backend == "postgresql":
        argv += ["--database-url", str(request.getfixturevalue("pg_url"))]
    settings = alerts.settings_from(parser.parse_args(argv))
    assert (settings.database_url is None) == (backend == "sqlite")

    report = await simulate(settings)
    check = report.check
    assert report.ok, check.failures
    assert check.messages == report.messages == 300
    # Every alert reached each recipient (and escalate_to) by a card or a digest.
    assert check.covered == check.pairs >= check.alerts > 0
    assert check.escalated == check.alerts  # nobody claims
    # The scenario makes the policy and the rate limit do their jobs, not just pass through.
    assert report.decisions["new"] and report.decisions["join"] and report.decisions["renotify"]
    assert check.held > 0 and check.sent["digest"] > 0 and check.sent["escalation"] > 0
    assert max(r.max_per_minute for r in check.recipients) == 20  # the budget, used to the full
    assert all(r.max_per_minute <= 30 and r.max_per_hour <= 1000 for r in check.recipients)
    printed: list[str] = []
    alerts.print_report(report, printed.append)
    assert "nothing lost" in printed[-1] and printed[-1].endswith("OK")
