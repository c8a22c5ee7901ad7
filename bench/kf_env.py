"""The kf benchmark's plumbing: storage, the fake WeCom and the bot, each on real HTTP.

What runs is production code: :func:`bot.web.app.create_app` on a config written to a temp dir,
served by ``aiohttp.web.AppRunner`` on a free loopback port, its WeCom client pointed at
``wecom_sdk.testing.fake_api.FakeWeCom`` (``kf_strict``: WeCom's 5-message budget, pull tokens,
session states) served the same way. Both share this process and its event loop.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import ClientSession, web

from bench.messages import (
    CALLBACK_PATH,
    SAMPLE_AES_KEY,
    SAMPLE_AGENT_ID,
    SAMPLE_CORP_ID,
    SAMPLE_TOKEN,
)
from bench.pg_schema import fresh_schema

if TYPE_CHECKING:
    from wecom_sdk.testing.fake_api import FakeWeCom

__all__ = [
    "HOST",
    "MANAGERS",
    "SECRET",
    "BotServer",
    "bot_server",
    "database",
    "fake_server",
    "redis_prefix",
    "temp_dir",
    "write_config",
]

HOST = "127.0.0.1"
SECRET = "kf-bench-app-secret"
MANAGERS = ("bench-manager1", "bench-manager2")


@contextmanager
def database(url: str | None, tmp: Path) -> Iterator[str]:
    """An empty database: a SQLite file in ``tmp``, or a fresh schema on the PostgreSQL ``url``."""
    if url is None:
        yield f"sqlite:///{tmp / 'sentinel.db'}"
        return
    with fresh_schema(url, "bench_kf") as schema_url:
        yield schema_url


@asynccontextmanager
async def redis_prefix(url: str | None) -> AsyncIterator[str]:
    """A key prefix of this run's own; its keys are deleted afterwards."""
    prefix = f"bench:kf:{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        if url:
            import redis.asyncio as aioredis

            client = aioredis.Redis.from_url(url)
            try:
                keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
                if keys:
                    await client.delete(*keys)
            finally:
                await client.aclose()


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()  # runs the app's cleanup_ctx start-up: resources, rules, kf puller
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


@asynccontextmanager
async def fake_server() -> AsyncIterator[tuple[FakeWeCom, str]]:
    """``FakeWeCom(kf_strict=True)`` on a loopback port, and its ``api_base``."""
    from wecom_sdk.testing.fake_api import FakeWeCom

    fake = FakeWeCom(corp_id=SAMPLE_CORP_ID, secret=SECRET, kf_strict=True)
    runner, port = await _serve(fake.app)
    try:
        yield fake, f"http://{HOST}:{port}/cgi-bin/"
    finally:
        await runner.cleanup()


def write_config(
    tmp: Path, *, database_url: str, redis_url: str, prefix: str, api_base: str, extra: str = ""
) -> Path:
    """The bot's config: sample credentials, the fake as WeCom, the sample rules, two managers.

    ``pull_interval_s`` is an hour so the periodic pass never runs during a measurement;
    ``extra`` is appended (more sections).
    """

    def q(value: str) -> str:
        return json.dumps(value)  # a JSON string is a valid TOML basic string

    path = tmp / "config.toml"
    path.write_text(
        f"""[server]
host = {q(HOST)}
callback_path = {q(CALLBACK_PATH)}

[wecom]
corp_id = {q(SAMPLE_CORP_ID)}
token = {q(SAMPLE_TOKEN)}
encoding_aes_key = {q(SAMPLE_AES_KEY)}
agent_id = {q(SAMPLE_AGENT_ID)}
secret = {q(SECRET)}
api_base = {q(api_base)}

[storage]
database_url = {q(database_url)}
redis_url = {q(redis_url)}
redis_prefix = {q(prefix)}

[alerts]
managers = {json.dumps(list(MANAGERS))}

[kf]
pull_interval_s = 3600.0

[logging]
level = "WARNING"
{extra}""",
        encoding="utf-8",
    )
    return path


@dataclass(slots=True)
class BotServer:
    """The bot's app, where it listens, and a client session to post callbacks with."""

    app: web.Application
    url: str
    session: ClientSession

    async def kf_event(self, open_kfid: str, token: str) -> tuple[int, bytes, float]:
        """POST a sealed ``kf_msg_or_event`` callback; (status, body, seconds to the answer)."""
        from wecom_sdk.crypto import MsgCrypto
        from wecom_sdk.testing.sealer import CallbackSealer
        from wecom_sdk.xmlsafe import render_xml

        inner = render_xml(
            {
                "ToUserName": SAMPLE_CORP_ID,
                "CreateTime": int(time.time()),
                "MsgType": "event",
                "Event": "kf_msg_or_event",
                "Token": token,
                "OpenKfId": open_kfid,
            }
        )
        crypto = MsgCrypto(SAMPLE_TOKEN, SAMPLE_AES_KEY, SAMPLE_CORP_ID)
        sealed = CallbackSealer(crypto, SAMPLE_CORP_ID, SAMPLE_AGENT_ID).seal(inner)
        started = time.perf_counter()
        async with self.session.post(self.url, params=sealed.query, data=sealed.body) as resp:
            answer = await resp.read()
            return resp.status, answer, time.perf_counter() - started


@asynccontextmanager
async def bot_server(config_path: Path) -> AsyncIterator[BotServer]:
    """The bot from ``config_path`` on a free loopback port, started and (afterwards) stopped."""
    from bot.config import load_config
    from bot.web.app import create_app

    app = create_app(load_config(config_path, {}))  # no env: never a developer's DATABASE_URL
    runner, port = await _serve(app)
    try:
        async with ClientSession() as session:
            yield BotServer(app, f"http://{HOST}:{port}{CALLBACK_PATH}", session)
    finally:
        await runner.cleanup()


def temp_dir() -> tempfile.TemporaryDirectory[str]:
    """The run's scratch directory (config, SQLite file)."""
    return tempfile.TemporaryDirectory(prefix="wecom-bench-kf-")
