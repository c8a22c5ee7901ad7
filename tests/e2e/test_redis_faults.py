"""Redis away or frozen, storage down: what WeCom and the operator see.

Each test starts its own ``redis-server`` on a free port (the shared one on 6379 is never touched),
points an app at it and then freezes it (``SIGSTOP``: the connections stay open, nothing answers)
or kills it (connection refused). Callbacks must still be stored and answered 200 well within
WeCom's 5 s, ``/healthz`` must answer at once with 200 ``"degraded"`` naming redis, and after
``SIGCONT`` (or a restart) it must return to ``"ok"``. Storage down is the one 503.

The measured latencies are printed (``pytest -s``) as p50 / p99 / max.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from bot.config import Config
from bot.web.app import create_app
from bot.web.keys import ARCHIVE, CONFIG, KF_PULLER
from tests.support.app import (
    AES_KEY,
    CORP_ID,
    TOKEN,
    free_port,
    make_config,
    sample_reply,
    sealed_post,
    text_xml,
)
from tests.support.redis_server import DedicatedRedis, dedicated_redis
from wecom_sdk.crypto import MsgCrypto
from wecom_sdk.testing.fake_api import FakeWeCom, kf_text
from wecom_sdk.xmlsafe import render_xml

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
PATH = "/wecom/callback"
#: Every callback must be answered well within WeCom's 5 s deadline, even on a loaded machine.
ANSWER_BUDGET_S = 3.0
#: /healthz must answer quickly even with Redis frozen (its probes are bounded).
HEALTH_BUDGET_S = 1.5
SECRET = "app-secret-for-tests"
KF = "wkSENTINEL"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[DedicatedRedis]:
    with dedicated_redis(tmp_path) as server:
        yield server


def crypto() -> MsgCrypto:
    return MsgCrypto(TOKEN, AES_KEY, CORP_ID)


def kf_notice(token: str) -> bytes:
    """The inner XML of a kf_msg_or_event callback (doc 94670)."""
    return render_xml(
        {
            "ToUserName": CORP_ID,
            "CreateTime": int(time.time()),
            "MsgType": "event",
            "Event": "kf_msg_or_event",
            "Token": token,
            "OpenKfId": KF,
        }
    )


def shared_config(
    tmp_path: Path, database_url: str, redis_url: str, redis_prefix: str, **kwargs: Any
) -> Config:
    return make_config(
        tmp_path, database_url, redis_url=redis_url, redis_prefix=redis_prefix, **kwargs
    )


async def timed_post(client: TestClient[Any, Any], msg_id: int, text: str) -> tuple[int, float]:
    """Status and seconds of one sealed callback."""
    body, query = sealed_post(crypto(), text_xml(text, msg_id))
    start = time.monotonic()
    resp = await client.post(PATH, params=query, data=body)
    await resp.read()
    return resp.status, time.monotonic() - start


async def timed_health(client: TestClient[Any, Any]) -> tuple[int, dict[str, Any], float]:
    start = time.monotonic()
    resp = await client.get("/healthz")
    data = await resp.json()
    return resp.status, data, time.monotonic() - start


async def wait_health(
    client: TestClient[Any, Any], status: str, timeout_s: float = 20.0
) -> dict[str, Any]:
    """Poll /healthz until its status is ``status``; the last answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        _, data, _ = await timed_health(client)
        if data["status"] == status:
            return data
        if time.monotonic() > deadline:
            raise AssertionError(f"/healthz never became {status!r}: {data}")
        await asyncio.sleep(0.1)


def summary(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return (
        f"n={len(ordered)} p50={statistics.median(ordered) * 1000:.0f} ms "
        f"p99={p99 * 1000:.0f} ms max={ordered[-1] * 1000:.0f} ms"
    )


async def callbacks_under_fault(
    client: TestClient[Any, Any], first_id: int, *, sequential: int, burst: int
) -> list[float]:
    """``sequential`` callbacks one after another, then ``burst`` at once; all must be 200."""
    latencies = []
    texts = ("你好", "什么时候发货", "我要投诉")  # a plain reply, a reply with a cooldown, a hit
    for n in range(sequential):
        status, seconds = await timed_post(client, first_id + n, texts[n % 3])
        assert status == 200
        latencies.append(seconds)
    results = await asyncio.gather(
        *(timed_post(client, first_id + sequential + n, texts[n % 3]) for n in range(burst))
    )
    assert {status for status, _ in results} == {200}
    latencies += [seconds for _, seconds in results]
    return latencies


async def remembered(server: DedicatedRedis, client: TestClient[Any, Any], key: str) -> bool:
    """Whether the shared dedupe store in ``server`` holds ``key``."""
    prefix = client.app[CONFIG].storage.redis_prefix
    probe = aioredis.Redis.from_url(server.url)
    try:
        return bool(await probe.exists(f"{prefix}dedupe:{key}"))
    finally:
        await probe.aclose()


def assert_degraded(status: int, data: dict[str, Any], seconds: float) -> None:
    assert status == 200, data
    assert data["status"] == "degraded"
    redis = data["dependencies"]["redis"]
    assert redis["ok"] is False
    assert redis["error"]
    assert redis["since"]
    assert data["dependencies"]["storage"]["ok"] is True
    assert seconds < HEALTH_BUDGET_S, f"/healthz took {seconds:.2f} s"


@pytest.fixture
async def app_on_dedicated_redis(
    aiohttp_client: ClientFactory,
    tmp_path: Path,
    pg_schema_url: str,
    redis_prefix: str,
    redis_server: DedicatedRedis,
) -> AsyncIterator[TestClient[Any, Any]]:
    config = shared_config(tmp_path, pg_schema_url, redis_server.url, redis_prefix)
    client = await aiohttp_client(create_app(config))
    status, _ = await timed_post(client, 1, "你好")  # the pool holds a live connection now
    assert status == 200
    status, data, _ = await timed_health(client)
    assert (status, data["status"]) == (200, "ok"), data
    assert data["dependencies"]["redis"]["ok"] is True
    yield client


async def test_frozen_redis_callbacks_answered_in_time_and_health_degraded(
    app_on_dedicated_redis: TestClient[Any, Any], redis_server: DedicatedRedis
) -> None:
    client = app_on_dedicated_redis
    redis_server.freeze()
    latencies = await callbacks_under_fault(client, 1000, sequential=30, burst=30)
    print(f"\nfrozen Redis, callbacks: {summary(latencies)}")
    assert max(latencies) < ANSWER_BUDGET_S, summary(latencies)
    assert await client.app[ARCHIVE].count() == 61  # every one stored
    status, data, seconds = await timed_health(client)
    print(f"frozen Redis, /healthz: {status} in {seconds * 1000:.0f} ms: {data}")
    assert_degraded(status, data, seconds)

    redis_server.thaw()
    recovered = await wait_health(client, "ok")
    assert recovered["dependencies"]["redis"]["ok"] is True
    # Shared dedupe works again: WeCom's retry of a message is dropped, stored once.
    for _ in range(2):
        assert (await timed_post(client, 5000, "你好"))[0] == 200
    assert await client.app[ARCHIVE].count() == 62
    assert await remembered(redis_server, client, "msg:5000")


async def test_killed_redis_callbacks_answered_and_health_degraded_until_it_is_back(
    app_on_dedicated_redis: TestClient[Any, Any], redis_server: DedicatedRedis
) -> None:
    client = app_on_dedicated_redis
    redis_server.kill()  # connection refused from now on
    latencies = await callbacks_under_fault(client, 2000, sequential=30, burst=30)
    print(f"\nkilled Redis, callbacks: {summary(latencies)}")
    assert max(latencies) < ANSWER_BUDGET_S, summary(latencies)
    assert await client.app[ARCHIVE].count() == 61
    status, data, seconds = await timed_health(client)
    print(f"killed Redis, /healthz: {status} in {seconds * 1000:.0f} ms: {data}")
    assert_degraded(status, data, seconds)
    assert data["redis"] == "unavailable" and data["storage"] == "ok"  # the short form

    redis_server.start()  # the same port; the client's pooled connections are stale
    await wait_health(client, "ok")
    for _ in range(2):
        assert (await timed_post(client, 5001, "你好"))[0] == 200
    assert await remembered(redis_server, client, "msg:5001")


# -- storage down: the one 503 ---------------------------------------------------------------


class TcpProxy:
    """Forwards a local port to PostgreSQL, in threads (the app's start-up blocks its loop on
    the database); ``cut`` closes every connection and refuses new ones, ``restore`` reopens."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self._target = ("127.0.0.1", target_port)
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            doomed = [*self._sockets, *([listener] if listener else [])]
            self._sockets.clear()
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    restore = start

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                inbound, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                outbound = socket.create_connection(self._target)
            except OSError:
                inbound.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut while this one was being connected
                    inbound.close()
                    outbound.close()
                    return
                self._sockets |= {inbound, outbound}
            for a, b in ((inbound, outbound), (outbound, inbound)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def pg_proxy(pg_url: str) -> Iterator[TcpProxy]:
    proxy = TcpProxy(urlsplit(pg_url).port or 5432)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.cut()


async def test_storage_down_is_the_one_503_and_health_recovers(
    aiohttp_client: ClientFactory,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    pg_proxy: TcpProxy,
) -> None:
    parts = urlsplit(request.getfixturevalue("pg_schema_url"))
    proxied = parts._replace(netloc=f"{parts.username}@127.0.0.1:{pg_proxy.port}").geturl()
    config = shared_config(
        tmp_path,
        proxied,
        request.getfixturevalue("redis_url"),
        request.getfixturevalue("redis_prefix"),
    )
    client = await aiohttp_client(create_app(config))
    assert (await timed_post(client, 1, "你好"))[0] == 200
    status, data, _ = await timed_health(client)
    assert (status, data["status"]) == (200, "ok"), data

    pg_proxy.cut()
    status, data, seconds = await timed_health(client)
    print(f"\nstorage down, /healthz: {status} in {seconds * 1000:.0f} ms: {data}")
    assert status == 503
    assert data["status"] == "down" and data["storage"] == "unavailable"
    storage = data["dependencies"]["storage"]
    assert storage["ok"] is False and storage["error"] and storage["since"]
    assert data["dependencies"]["redis"]["ok"] is True  # Redis is fine: storage alone is down
    assert seconds < HEALTH_BUDGET_S
    assert (await timed_post(client, 2, "你好"))[0] == 503  # not stored: WeCom retries

    pg_proxy.restore()
    await wait_health(client, "ok")
    assert (await timed_post(client, 2, "你好"))[0] == 200  # WeCom's retry goes through
    assert await client.app[ARCHIVE].get("msg:2") is not None


# -- kf and alerts with Redis frozen: pull locks and the access token in process ----------------


@pytest.fixture
async def fake_wecom(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> tuple[FakeWeCom, str]:
    wecom = FakeWeCom(corp_id=CORP_ID, secret=SECRET, kf_strict=True)
    server = await aiohttp_server(wecom.app)
    return wecom, str(server.make_url("/cgi-bin/"))


async def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_frozen_redis_kf_pulls_and_alerts_still_go_out(
    aiohttp_client: ClientFactory,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    redis_server: DedicatedRedis,
    fake_wecom: tuple[FakeWeCom, str],
) -> None:
    wecom, api_base = fake_wecom
    config = shared_config(
        tmp_path,
        request.getfixturevalue("pg_schema_url"),
        redis_server.url,
        request.getfixturevalue("redis_prefix"),
        secret=SECRET,
        api_base=api_base,
        extra='[alerts]\nmanagers = ["mgr1"]\n',
    )
    client = await aiohttp_client(create_app(config))
    assert (await timed_health(client))[1]["status"] == "ok"
    redis_server.freeze()

    # 微信客服: the notice is answered at once; the pull runs on the in-process lock.
    wecom.add_kf_messages(KF, [kf_text("f-1", "wmA", "什么时候发货", open_kfid=KF)])
    body, query = sealed_post(crypto(), kf_notice(wecom.issue_kf_token(KF)))
    start = time.monotonic()
    resp = await client.post(PATH, params=query, data=body)
    assert (resp.status, await resp.read()) == (200, b"")
    assert time.monotonic() - start < ANSWER_BUDGET_S
    await asyncio.wait_for(client.app[KF_PULLER].idle(), 15)
    (delivered,) = wecom.kf_delivered_to("wmA")
    assert delivered.text == sample_reply("发货物流")

    # A risky app message: stored, answered, and its alert card reaches the manager (the
    # access token was fetched and kept in process).
    status, seconds = await timed_post(client, 3000, "我要投诉")
    assert status == 200 and seconds < ANSWER_BUDGET_S
    await wait_for(lambda: bool(wecom.calls_to("message/send")), "the alert card")
    (card,) = wecom.calls_to("message/send")
    assert card.body["touser"] == "mgr1"
    status, data, seconds = await timed_health(client)
    assert_degraded(status, data, seconds)
