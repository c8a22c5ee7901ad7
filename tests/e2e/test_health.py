"""``/healthz`` against real outages, and the durability settings a running server really uses.

Storage goes down for real: the app reaches PostgreSQL through a TCP proxy the test owns, and
closing the proxy is the outage (no mock). The SQLite ``synchronous`` level is read from the
connection the server's group-commit writer commits on, not from the config it was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import Connection

from bot.config import load_config
from bot.web.app import create_app
from bot.web.keys import WRITER
from tests.support.app import (
    AES_KEY,
    CORP_ID,
    TOKEN,
    make_config,
    sealed_post,
    text_xml,
    write_config,
)
from tests.support.waiting import until_async
from wecom_sdk.crypto import MsgCrypto

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


class TcpProxy:
    """Forwards a local port to ``target`` from a thread of its own (the app's start-up blocks
    its event loop on the database); :meth:`cut` drops every connection and refuses new ones."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    def start(self) -> None:
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(5)

    def cut(self) -> None:
        asyncio.run_coroutine_threadsafe(self._cut(), self._loop).result(5)

    def close(self) -> None:
        if self._server is not None:
            self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _cut(self) -> None:
        assert self._server is not None
        self._server.close()
        self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture
def proxied_pg(pg_schema_url: str) -> Iterator[tuple[str, TcpProxy]]:
    """The test schema's URL, through a proxy the test can cut."""
    parts = urlsplit(pg_schema_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    proxy.start()
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{proxy.port}" if credentials else f"127.0.0.1:{proxy.port}"
    yield urlunsplit(parts._replace(netloc=netloc)), proxy
    proxy.close()


async def test_healthz_is_503_naming_storage_while_the_database_is_down(
    aiohttp_client: ClientFactory, tmp_path: Path, proxied_pg: tuple[str, TcpProxy]
) -> None:
    url, proxy = proxied_pg
    client = await aiohttp_client(create_app(make_config(tmp_path, url)))
    up = await client.get("/healthz")
    assert up.status == 200 and (await up.json())["storage"] == "ok"

    proxy.cut()
    down = await client.get("/healthz")
    body = await down.json()
    assert down.status == 503, body
    assert body["storage"] != "ok" and body["status"] != "ok"
    # The callback refuses too: nothing can be stored, so WeCom must retry.
    crypto = MsgCrypto(TOKEN, AES_KEY, CORP_ID)
    body_bytes, query = sealed_post(crypto, text_xml("存不进去", 8801))
    resp = await client.post("/wecom/callback", params=query, data=body_bytes)
    assert resp.status == 503

    proxy.start()  # the database is back, on the same port

    async def healthy() -> bool:
        return (await client.get("/healthz")).status == 200

    await until_async(healthy, "/healthz to answer 200 once the database is back")


async def _synchronous(client: TestClient[Any, Any]) -> int:
    def read(conn: Connection) -> int:
        return int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())

    return await client.app[WRITER].run(read)


async def test_the_running_server_commits_with_sqlite_synchronous_full(
    aiohttp_client: ClientFactory, tmp_path: Path, sqlite_url: str
) -> None:
    client = await aiohttp_client(create_app(make_config(tmp_path, sqlite_url)))
    assert await _synchronous(client) == 2  # FULL: every group commit fsynced before the 2xx

    def journal(conn: Connection) -> str:
        return str(conn.exec_driver_sql("PRAGMA journal_mode").scalar_one())

    assert await client.app[WRITER].run(journal) == "wal"


async def test_sqlite_synchronous_normal_is_taken_from_the_config(
    aiohttp_client: ClientFactory, tmp_path: Path, sqlite_url: str
) -> None:
    path = write_config(tmp_path, sqlite_url)
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "[storage]\n", '[storage]\nsqlite_synchronous = "NORMAL"\n'
        ),
        encoding="utf-8",
    )
    config = load_config(path, {})
    assert config.storage.sqlite_synchronous == "NORMAL"
    client = await aiohttp_client(create_app(config))
    assert await _synchronous(client) == 1
