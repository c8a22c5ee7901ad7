"""Slow clients against ``run_bot.py serve``: a client trickling its headers or its body, or
sending nothing, is disconnected within ``[server].header_timeout_s`` / ``body_timeout_s`` (plus
slack for a loaded machine), while other clients are served meanwhile; a kept-alive connection
that merely idles between requests is left open.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from bot.config import ConfigError, ServerConfig, load_config
from bot.web.limits import ReadLimits
from tests.support.app import (
    AES_KEY,
    CORP_ID,
    TOKEN,
    ServerProcess,
    free_port,
    sealed_post,
    text_xml,
    write_config,
)
from tests.support.paths import REPO
from wecom_sdk.crypto import MsgCrypto

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0
#: How late a deadline may fire on a loaded machine (two cores shared with other test workers).
SLACK = 3.0
#: How early: the timer runs in the server from its accept, a little before our clock starts.
EARLY = 0.3
PATH = "/wecom/callback"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("slow")
    port = free_port()
    config = write_config(directory, f"sqlite:///{directory / 'sentinel.db'}", port=port)
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "[server]\n",
            f"[server]\nheader_timeout_s = {HEADER_TIMEOUT}\nbody_timeout_s = {BODY_TIMEOUT}\n",
            1,
        ),
        encoding="utf-8",
    )
    proc = ServerProcess(config, port)
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.close()


async def trickle(writer: asyncio.StreamWriter, data: bytes, stop: asyncio.Event) -> None:
    """Send ``data`` one byte every 0.5 s until it is sent, the peer is gone, or ``stop``."""
    for byte in data:
        if stop.is_set():
            return
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            return
        with contextlib.suppress(TimeoutError):  # the pace of this client: a byte per 0.5 s
            await asyncio.wait_for(stop.wait(), 0.5)


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    answer = b""
    try:
        while chunk := await reader.read(65536):
            answer += chunk
    except ConnectionError:
        pass
    return answer


async def slow_client(port: int, head: bytes, trickled: bytes) -> tuple[float, float, bytes]:
    """Send ``head`` at once and ``trickled`` slowly: when the server closed (monotonic), seconds
    from the connect to that close, and what it answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    stop = asyncio.Event()
    writer.write(head)
    await writer.drain()
    sender = asyncio.create_task(trickle(writer, trickled, stop))
    try:
        answer = await asyncio.wait_for(read_until_closed(reader), 120)
        closed = time.monotonic()
        return closed, closed - started, answer
    finally:
        stop.set()
        await sender
        writer.close()


def callback_head(length: int) -> bytes:
    return (
        f"POST {PATH}?msg_signature=0&timestamp=1&nonce=1 HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: text/xml\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def test_slow_clients_are_cut_off_while_others_are_served(server: ServerProcess) -> None:
    headers = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200 + b"\r\n\r\n"
    slow = {
        "trickled headers": slow_client(server.port, b"", headers),
        "stalled body": slow_client(server.port, callback_head(1000) + b"<xml>", b""),
        "trickled body": slow_client(server.port, callback_head(1000), b"<xml>" + b"a" * 995),
        "silent connection": slow_client(server.port, b"", b""),
    }
    bounds = {
        "trickled headers": HEADER_TIMEOUT,
        "stalled body": BODY_TIMEOUT,
        "trickled body": BODY_TIMEOUT,
        "silent connection": HEADER_TIMEOUT,
    }
    slow_tasks = {name: asyncio.create_task(coro) for name, coro in slow.items()}
    served: list[tuple[int, float]] = []  # (status, monotonic time of the answer)
    crypto = MsgCrypto(TOKEN, AES_KEY, CORP_ID)
    async with aiohttp.ClientSession(base_url=server.base) as session:
        msg_id = 9_000
        while not all(task.done() for task in slow_tasks.values()):
            async with session.get("/healthz") as resp:
                served.append((resp.status, time.monotonic()))
            msg_id += 1
            body, query = sealed_post(crypto, text_xml("慢客户端期间的消息", msg_id))
            async with session.post(PATH, params=query, data=body) as resp:
                served.append((resp.status, time.monotonic()))
    results = {name: await task for name, task in slow_tasks.items()}
    for name, (_, seconds, answer) in results.items():
        assert bounds[name] - EARLY <= seconds <= bounds[name] + SLACK, (name, seconds, answer)
    assert results["stalled body"][2].startswith(b"HTTP/1.1 408 "), results["stalled body"]
    assert results["silent connection"][2] == b""
    for name in ("trickled headers", "trickled body"):  # 408, unless the close overtook it
        answer = results[name][2]
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), (name, answer)
    assert {status for status, _ in served} == {200}
    first_cut = min(closed for closed, _, _ in results.values())
    assert [t for _, t in served if t < first_cut], "nobody was served while the slow ones hung on"
    output = server.output()
    assert "rejected 408: request headers not received within 2 s" in output
    assert "rejected 408: request body not received within 2 s" in output
    assert "Traceback" not in output


async def test_an_idle_kept_alive_connection_stays_open(server: ServerProcess) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        for turn in range(2):
            writer.write(request)
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 10)
            assert status_line.startswith(b"HTTP/1.1 200 "), status_line
            await read_response_rest(reader)
            if turn == 0:
                # Idle past the header deadline: only the keep-alive timer (75 s) may close it.
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(reader.read(1), HEADER_TIMEOUT + 1)
    finally:
        writer.close()


async def read_response_rest(reader: asyncio.StreamReader) -> None:
    length = 0
    while (line := await asyncio.wait_for(reader.readline(), 10)) != b"\r\n":
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    await asyncio.wait_for(reader.readexactly(length), 10)


@pytest.mark.parametrize("key", ["header_timeout_s", "body_timeout_s"])
@pytest.mark.parametrize("value", ["0", "-1", "300.5", '"10"', "true"])
def test_read_deadlines_are_validated(tmp_path: Path, key: str, value: str) -> None:
    config = write_config(tmp_path, "sqlite:///x.db")
    text = config.read_text(encoding="utf-8").replace("[server]\n", f"[server]\n{key} = {value}\n")
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"[server].{key}")):
        load_config(config, {})


def test_read_deadlines_default_to_10_s() -> None:
    example = load_config(REPO / "config.example.toml", {}).server
    assert (example.header_timeout_s, example.body_timeout_s) == (10.0, 10.0)
    assert ReadLimits.of(ServerConfig()) == ReadLimits(10.0, 10.0)
