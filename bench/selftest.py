"""``python -m bench selftest``: the harness checks itself, so its figures can be trusted.

- the sealed callbacks are WeCom's: wechatpy (an independent implementation) opens every one to
  exactly the plaintext sealed, with WeCom's fields in WeCom's order, one in ``RISK_EVERY``
  carrying a risk phrase;
- the same seed gives the same messages, sealed afresh for another timestamp;
- the load generator frames responses right (Content-Length, chunked, pipelined bytes);
- it counts every answer: all 2xx from the bare server, every 403 from the peer given callbacks
  signed with another token, and the peer's risk scan flags exactly the risky messages.

Each check prints ``ok NAME`` or ``FAILED NAME: why``; the exit status is 1 if any failed. The
servers run in this process on loopback; nothing else is started.
"""

from __future__ import annotations

import argparse
import asyncio
import traceback
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from bench.loadgen import LoadResult, _response_end, render_requests, run_load
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

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["CHECKS", "HELP", "NAME", "add_arguments", "run"]

NAME = "selftest"
HELP = "check the harness itself: sealing, message generation, load-generator counting"

NOW = 1_700_000_000
HOST = "127.0.0.1"


def _query(target: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(target).query))


def sealed_callbacks_open_with_wechatpy() -> None:
    """Distinct callbacks that wechatpy opens to the sealed plaintext, fields as WeCom writes them."""
    import xmltodict
    from wechatpy.enterprise.crypto import WeChatCrypto

    batch = generate_callbacks(200, seed=7, timestamp=NOW)
    assert len({c.msg_id for c in batch}) == len({c.body for c in batch}) == 200

    crypto = WeChatCrypto(SAMPLE_TOKEN, SAMPLE_AES_KEY, SAMPLE_CORP_ID)
    risky = 0
    for cb in batch:
        assert urlsplit(cb.target).path == CALLBACK_PATH
        q = _query(cb.target)
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


def same_seed_same_messages_fresh_seal() -> None:
    """A seed fixes the messages; another timestamp seals them afresh."""
    first = generate_callbacks(20, seed=1, timestamp=NOW)
    later = generate_callbacks(20, seed=1, timestamp=NOW + 60)
    assert [c.msg_id for c in first] == [c.msg_id for c in later]
    assert [c.inner_xml.replace(str(NOW), "T") for c in first] == [
        c.inner_xml.replace(str(NOW + 60), "T") for c in later
    ]
    assert all(a.body != b.body for a, b in zip(first, later, strict=True))


def response_framing() -> None:
    """The load generator finds the end of a response, and only of a complete one."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
    assert _response_end(bytearray(head + b"Content-Length: 7\r\n\r\nsucc")) is None
    whole = head + b"Content-Length: 7\r\n\r\nsuccess"
    assert _response_end(bytearray(whole + b"HTTP/1.1")) == (200, len(whole))
    chunked = head + b"Transfer-Encoding: chunked\r\n\r\n7\r\nsuccess\r\n0\r\n\r\n"
    assert _response_end(bytearray(chunked[:-2])) is None
    assert _response_end(bytearray(chunked)) == (200, len(chunked))


async def loadgen_against_bare_server() -> None:
    """Every callback answered 200 by the bare server is counted once, with sane latencies."""
    from bench.servers import bare

    async with _serving(bare.create_app()) as port:
        result = await _load(port, generate_callbacks(48, seed=3), concurrency=8)
    assert (result.requests, result.ok, result.errors) == (48, 48, 0)
    assert result.statuses == {200: 48}
    assert not result.timed_out
    assert 0 < result.p50_ms <= result.p99_ms
    assert result.rps > 0


async def loadgen_against_peer_counts_rejections() -> None:
    """The peer flags the risky messages; callbacks signed with another token are 403s, counted."""
    from bench.servers import peer

    batch = generate_callbacks(40, seed=5)  # timestamps of now: peer ignores them anyway
    app = peer.create_app()
    async with _serving(app) as port:
        result = await _load(port, batch, concurrency=4)
        assert (result.ok, result.errors) == (40, 0)
        assert app[peer.FLAGGED]["flagged"] == 40 // RISK_EVERY

        # Signed with another token: every request is a 403, and the harness reports each one.
        forged = generate_callbacks(10, seed=5, token="not-the-token")
        result = await _load(port, forged, concurrency=4)
        assert (result.ok, result.errors, result.statuses) == (0, 10, {403: 10})


@asynccontextmanager
async def _serving(app: web.Application) -> AsyncIterator[int]:
    """``app`` on a free loopback port for the block; yields the port."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, HOST, 0).start()
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def _load(port: int, batch: Sequence[SealedCallback], concurrency: int) -> LoadResult:
    requests = render_requests([(c.target, c.body) for c in batch], HOST, port)
    return await run_load(HOST, port, requests, concurrency, 10.0)


#: The checks in the order they run; a coroutine function runs on its own event loop.
CHECKS: tuple[Callable[[], object], ...] = (
    sealed_callbacks_open_with_wechatpy,
    same_seed_same_messages_fresh_seal,
    response_framing,
    loadgen_against_bare_server,
    loadgen_against_peer_counts_rejections,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``python -m bench selftest`` takes no options."""


def run(args: argparse.Namespace) -> int:
    """Run every check, print one line each; 1 if any failed."""
    if not __debug__:
        print("the self-test is made of assert statements: run it without python -O")
        return 2
    failed = 0
    for check in CHECKS:
        try:
            outcome = check()
            if asyncio.iscoroutine(outcome):
                asyncio.run(outcome)
        except Exception:
            failed += 1
            print(f"FAILED {check.__name__}:\n{traceback.format_exc()}")
        else:
            print(f"ok {check.__name__}")
    return 1 if failed else 0
