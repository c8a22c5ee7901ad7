"""Hostile input at the HTTP edge: every hostile request is a 4xx with one log line and no
traceback, valid callbacks before and after still go through, a storm of bad requests costs a
bounded number of lines, and a real bug still logs its traceback. Each request carries an id
(``X-Request-Id``) in its response and its log line.

The server is the app behind ``LimitedAppRunner``, the runner ``run_bot.py serve`` uses, so
malformed HTTP meets the same connection handler as in production.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web_runner import BaseRunner

from bot.log import RejectLog
from bot.web.app import create_app
from bot.web.keys import ARCHIVE
from bot.web.limits import LimitedAppRunner, ReadLimits
from bot.web.request_id import REJECTS
from tests.support.app import AES_KEY, CORP_ID, TOKEN, make_config, sealed_post, text_xml
from wecom_sdk.crypto import MsgCrypto

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
PATH = "/wecom/callback"
HEX_ID = re.compile(r"[0-9a-f]{16}")


class LimitedTestServer(TestServer):
    """aiohttp's test server on the runner ``serve`` uses."""

    def __init__(self, app: web.Application, *, rejects: RejectLog | None = None) -> None:
        super().__init__(app)
        self.rejects = rejects

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return LimitedAppRunner(self.app, limits=ReadLimits(), rejects=self.rejects, **kwargs)


def crypto() -> MsgCrypto:
    return MsgCrypto(TOKEN, AES_KEY, CORP_ID)


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("a bug of ours")


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, tmp_path: Path, sqlite_url: str
) -> TestClient[Any, Any]:
    app = create_app(make_config(tmp_path, sqlite_url))
    app.router.add_get("/boom", boom)
    return await aiohttp_client(LimitedTestServer(app))


def problems(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The records an operator would see: WARNING and above."""
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


async def raw(client: TestClient[Any, Any], data: bytes) -> bytes:
    """Send raw bytes on a new connection; everything the server answers until it closes."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout=30)
    finally:
        writer.close()


# --- hostile callbacks ---------------------------------------------------------------------------


def nested(depth: int, inner: bytes = b"x") -> bytes:
    return b"<xml>" + b"<a>" * depth + inner + b"</a>" * depth + b"</xml>"


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY l "lol">'
    + b"".join(
        b'<!ENTITY l%d "%s">' % (i, (b"&l%d;" % (i - 1) if i else b"&l;") * 10) for i in range(9)
    )
    + b"]><xml><Encrypt>&l8;</Encrypt></xml>"
)

EXTERNAL_ENTITY = (
    b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>'
)


def hostile_callbacks() -> list[tuple[str, int, bytes, dict[str, str]]]:
    """(name, status, body, query): each is refused whatever it holds."""
    body, query = sealed_post(crypto(), text_xml("正常", 1))
    encrypt = body[body.index(b"<Encrypt>") : body.index(b"</Encrypt>") + len(b"</Encrypt>")]
    attributes = b" ".join(b'a%d="1"' % i for i in range(5_000))
    unsigned = {k: v for k, v in query.items() if k != "msg_signature"}
    return [
        ("deep nesting", 400, nested(5_000), query),
        ("deep nesting around a signed Encrypt", 400, nested(2_000, encrypt), query),
        ("5000 attributes", 400, b"<xml " + attributes + b">" + encrypt + b"</xml>", query),
        ("billion laughs", 400, BILLION_LAUGHS, query),
        ("external entity", 400, EXTERNAL_ENTITY, query),
        ("two Encrypt elements", 400, b"<xml>" + encrypt * 2 + b"</xml>", query),
        ("Encrypt nested in another element", 400, b"<xml><W>" + encrypt + b"</W></xml>", query),
        ("comment", 400, b"<xml><!-- c -->" + encrypt + b"</xml>", query),
        ("processing instruction", 400, b"<xml><?x y?>" + encrypt + b"</xml>", query),
        ("unterminated CDATA", 400, b"<xml><Encrypt><![CDATA[abc</Encrypt></xml>", query),
        ("binary junk", 400, bytes(range(256)) * 8, query),
        ("unsigned body", 400, body, unsigned),
        ("forged signature", 403, body, {**query, "msg_signature": "0" * 40}),
        ("too large", 413, b"<xml>" + b"a" * 70_000 + b"</xml>", query),
        ("signed, inner nests 3000 deep", 400, *sealed_post(crypto(), nested(3_000))),
        ("signed, inner billion laughs", 400, *sealed_post(crypto(), BILLION_LAUGHS)),
    ]


async def test_hostile_callbacks_are_4xx_with_one_line_and_valid_ones_pass(
    aiohttp_client: ClientFactory,
    tmp_path: Path,
    sqlite_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(make_config(tmp_path, sqlite_url))
    app[REJECTS] = RejectLog(burst=1_000)  # no rate limit: every rejection shows its own line
    client = await aiohttp_client(LimitedTestServer(app))

    async def valid(msg_id: int) -> None:
        body, query = sealed_post(crypto(), text_xml("你好", msg_id))
        assert (await client.post(PATH, params=query, data=body)).status == 200

    await valid(100)
    for name, status, body, query in hostile_callbacks():
        caplog.clear()
        started = time.perf_counter()
        resp = await client.post(PATH, params=query, data=body)
        elapsed = time.perf_counter() - started
        assert resp.status == status, name
        request_id = resp.headers["X-Request-Id"]
        lines = problems(caplog)
        assert len(lines) == 1, (name, [r.getMessage() for r in lines])
        assert lines[0].exc_info is None, name
        assert request_id in lines[0].getMessage(), name
        assert elapsed < 5, name  # refused quickly, not after expensive work
        assert (await client.get("/healthz")).status == 200
    await valid(101)
    assert await client.app[ARCHIVE].count() == 2  # nothing hostile was stored
    assert AES_KEY not in caplog.text


MALFORMED_HTTP = [
    ("garbage request line", b"GARBAGE\r\n\r\n"),
    ("header line too long", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9_000 + b"\r\n\r\n"),
    ("invalid header name", b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n"),
    ("non-numeric length", b"POST /wecom/callback HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n"),
    (
        "length and chunked",
        b"POST /wecom/callback HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    ("NUL in a header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"),
    ("too many headers", b"GET /healthz HTTP/1.1\r\n" + b"X-A: 1\r\n" * 200 + b"\r\n"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "data"), MALFORMED_HTTP, ids=[m[0] for m in MALFORMED_HTTP])
async def test_malformed_http_is_400_with_one_line_and_no_traceback(
    client: TestClient[Any, Any], name: str, data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    answer = await raw(client, data)
    assert re.match(rb"HTTP/1\.[01] 400 ", answer), answer[:80]
    request_id = re.search(rb"X-Request-Id: (\w+)", answer)
    assert request_id is not None
    lines = problems(caplog)
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].exc_info is None
    assert request_id[1].decode() in lines[0].getMessage()
    assert (await client.get("/healthz")).status == 200


# --- storms and bugs -----------------------------------------------------------------------------


async def test_a_storm_of_bad_requests_logs_a_bounded_number_of_lines(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    body, query = sealed_post(crypto(), text_xml("x", 1))
    kinds: list[Callable[[], Awaitable[int]]] = [
        lambda: status_of(
            client.post(PATH, params={**query, "msg_signature": "0" * 40}, data=body)
        ),
        lambda: status_of(client.post(PATH, params=query, data=nested(2_000))),
        lambda: status_of(client.post(PATH, params={"nonce": "1"}, data=body)),
        lambda: raw_status(client, b"GARBAGE\r\n\r\n"),
    ]
    expected = [403, 400, 400, 400]
    semaphore = asyncio.Semaphore(20)

    async def one(i: int) -> None:
        async with semaphore:
            assert await kinds[i % len(kinds)]() == expected[i % len(kinds)]

    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(1_000)))
    windows = 1 + math.ceil((time.monotonic() - started) / 10)  # RejectLog's default window
    lines = problems(caplog)
    assert not [r for r in lines if r.exc_info], "a rejected request logged a traceback"
    # Per kind and window: 10 lines and at most one "suppressed" summary.
    assert len(lines) <= len(kinds) * 11 * windows, len(lines)
    assert len(lines) < 100
    assert (await client.get("/healthz")).status == 200


async def status_of(request: Any) -> int:
    async with request as resp:
        return int(resp.status)


async def raw_status(client: TestClient[Any, Any], data: bytes) -> int:
    return int((await raw(client, data)).split(b" ", 2)[1])


async def test_a_real_bug_still_logs_its_traceback_with_the_request_id(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    resp = await client.get("/boom", headers={"X-Request-Id": "trace-42"})
    assert resp.status == 500
    assert resp.headers["X-Request-Id"] == "trace-42"
    lines = problems(caplog)
    assert len(lines) == 1
    assert lines[0].exc_info is not None and lines[0].exc_info[0] is RuntimeError
    assert "trace-42" in lines[0].getMessage()


# --- request ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("0f8fad5b-d9cb-469f-a165-70867728950e", True),
        ("Root=1-5759e988-bd862e3fe1be46a994272793", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("", False),
        ("has space", False),
        ('quote"d', False),
        ("中文", False),
    ],
)
async def test_request_id_is_taken_when_sane_else_generated(
    client: TestClient[Any, Any], given: str, kept: bool
) -> None:
    resp = await client.get("/healthz", headers={"X-Request-Id": given.encode().decode("latin-1")})
    assert resp.status == 200
    if kept:
        assert resp.headers["X-Request-Id"] == given
    else:
        assert HEX_ID.fullmatch(resp.headers["X-Request-Id"])


async def test_every_answer_carries_a_request_id(client: TestClient[Any, Any]) -> None:
    ids = set()
    for method, path in [("GET", "/healthz"), ("GET", "/nowhere"), ("PUT", PATH), ("POST", PATH)]:
        resp = await client.request(method, path)
        assert HEX_ID.fullmatch(resp.headers["X-Request-Id"]), (method, path, resp.status)
        ids.add(resp.headers["X-Request-Id"])
    assert len(ids) == 4


# --- RejectLog -----------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_reject_log_bursts_then_summarises_per_kind(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    logger = logging.getLogger("sentinel.test")
    clock = Clock()
    log = RejectLog(burst=3, window_s=10, clock=clock)
    for i in range(100):
        log.rejected(logger, "a", "a %d", i)
    log.rejected(logger, "b", "b")
    assert [r.getMessage() for r in caplog.records] == ["a 0", "a 1", "a 2", "b"]
    caplog.clear()
    clock.now += 10  # a's window has closed: its summary comes before its next line
    log.rejected(logger, "a", "a again")
    assert [r.getMessage() for r in caplog.records] == [
        "suppressed 97 similar rejections in 10 s: a",
        "a again",
    ]


async def test_reject_log_summary_comes_when_the_window_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    logger = logging.getLogger("sentinel.test")
    log = RejectLog(burst=1, window_s=0.2)
    for _ in range(5):
        log.rejected(logger, "k", "line")
    deadline = time.monotonic() + 10
    while "suppressed 4 similar rejections" not in caplog.text:
        assert time.monotonic() < deadline, caplog.text
        await asyncio.sleep(0.02)
    assert caplog.text.count("suppressed") == 1


def test_reject_log_forgets_closed_windows() -> None:
    clock = Clock()
    log = RejectLog(burst=1, window_s=1, clock=clock)
    logger = logging.getLogger("sentinel.test")
    for i in range(RejectLog.MAX_KINDS):
        log.rejected(logger, f"k{i}", "x")
    clock.now += 2
    log.rejected(logger, "new", "x")
    assert len(log._windows) == 1
