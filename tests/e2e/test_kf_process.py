"""微信客服 as an operator runs it: ``run_bot.py serve`` in a subprocess against the fake WeCom
(kf rules on) served from the test's loop. kill -9 in the middle of a pull, then a restart:
nothing lost, nothing answered twice. Two workers receiving callbacks at once: one puller, no
duplicates."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import text

from monitor.archive import make_engine
from tests.e2e.test_kf_flow import kf_callback
from tests.support.app import (
    AES_KEY,
    CORP_ID,
    TOKEN,
    ServerProcess,
    free_port,
    sample_reply,
    sealed_post,
    write_config,
)
from wecom_sdk.crypto import MsgCrypto
from wecom_sdk.testing.fake_api import FakeWeCom, kf_text

pytestmark = pytest.mark.slow

SECRET = "kf-process-secret"
KF = "wkSENTINEL"
HANDOFF_TEXT = "好的，正在为您转接人工客服，请稍候。"


@pytest.fixture
async def fake_api() -> AsyncIterator[tuple[FakeWeCom, str]]:
    fake = FakeWeCom(corp_id=CORP_ID, secret=SECRET, kf_strict=True)
    runner = web.AppRunner(fake.app, shutdown_timeout=1.0)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield fake, f"http://127.0.0.1:{port}/cgi-bin/"
    await runner.cleanup()


async def send_event(base: str, fake: FakeWeCom) -> int:
    """One kf_msg_or_event callback on a new connection (so SO_REUSEPORT may pick any worker)."""
    body, query = sealed_post(
        MsgCrypto(TOKEN, AES_KEY, CORP_ID), kf_callback(fake.issue_kf_token(KF))
    )
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.post(f"{base}/wecom/callback", params=query, data=body) as resp,
    ):
        await resp.read()
        return resp.status


def sql(database_url: str, query: str) -> list[Any]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(query)))
    finally:
        engine.dispose()


async def until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def delivered_at_least(fake: FakeWeCom, count: int) -> bool:
    return len(fake.kf_deliveries) >= count


def customers_items(count: int, per_customer: int, prefix: str) -> list[dict[str, Any]]:
    """Each customer asks about shipping (answered), then writes what the bot cannot answer."""
    items = []
    for n in range(per_customer):
        for c in range(count):
            content = "请问什么时候发货" if n == 0 else f"订单{c}-{n}的情况说明"
            items.append(kf_text(f"{prefix}-{c}-{n}", f"wm{prefix}{c}", content, open_kfid=KF))
    return items


# Where the first process dies, held there by the fake WeCom: after page 1 (1,000 items) is
# archived but before its decisions and cursor commit (the page must be re-read and decided
# then), or after they commit while the first replies are in flight (WeCom got them, the bot
# never learnt it: they must be re-sent with their msgid, not delivered twice).
KILL_POINTS = {"before_commit": "kf/service_state/get", "first_send": "kf/send_msg"}


@pytest.mark.parametrize("kill_at", sorted(KILL_POINTS))
async def test_kill_9_during_a_pull_then_restart_loses_nothing_and_answers_nothing_twice(
    tmp_path: Path, database_url: str, fake_api: tuple[FakeWeCom, str], kill_at: str
) -> None:
    fake, api_base = fake_api
    customers = 300
    fake.add_kf_messages(KF, customers_items(customers, 5, "k"))  # 1,500 messages
    reached, release = asyncio.Event(), asyncio.Event()

    async def hold(_body: dict[str, Any]) -> None:
        reached.set()
        await release.wait()  # answered only after the kill: the bot never learns the outcome

    fake.on_call(KILL_POINTS[kill_at], hold)
    port = free_port()
    config = write_config(tmp_path, database_url, port=port, secret=SECRET, api_base=api_base)
    first = ServerProcess(config, port)
    try:
        await asyncio.to_thread(first.wait_ready)
        assert await send_event(first.base, fake) == 200
        await asyncio.wait_for(reached.wait(), 30)
        first.signal(signal.SIGKILL)
        await asyncio.to_thread(first.wait)
    finally:
        first.close()
        fake.on_call(KILL_POINTS[kill_at], None)
        release.set()
    delivered_before = len(fake.kf_deliveries)
    (cursor,) = sql(database_url, "SELECT cursor FROM kf_cursor")[0]
    decided = sql(database_url, "SELECT count(*) FROM kf_decision")[0][0]
    assert sql(database_url, "SELECT count(*) FROM message WHERE channel = 'kf'")[0][0] == 1000
    if kill_at == "before_commit":
        assert (cursor, decided, delivered_before) == ("", 0, 0)
    else:
        assert (cursor, decided) == ("1000", 1000) and delivered_before >= 1

    second = ServerProcess(config, port)
    try:
        await asyncio.to_thread(second.wait_ready)
        assert await send_event(second.base, fake) == 200
        # Each customer: the shipping answer, then (3 unanswerable messages later) the hand-off.
        await until(lambda: len(fake.kf_deliveries) >= 2 * customers, 90, "every answer")
        # Every decided action confirmed: a second send, if any, would have happened by then.
        await until(
            lambda: (
                sql(database_url, "SELECT count(*) FROM kf_reply WHERE status = 'pending'")
                == [(0,)]
            ),
            30,
            "no kf reply left pending",
        )
    finally:
        second.close()
    archived = {r[0] for r in sql(database_url, "SELECT dedupe_key FROM message")}
    assert {f"kf:k-{c}-{n}" for c in range(customers) for n in range(5)} <= archived
    for c in range(customers):
        texts = [d.text for d in fake.kf_delivered_to(f"wmk{c}")]
        assert texts == [sample_reply("发货物流"), HANDOFF_TEXT], (c, texts)
    assert fake.kf_refused == []
    assert len(fake.calls_to("kf/service_state/trans")) >= customers
    assert all(fake.kf_state(KF, f"wmk{c}") == 2 for c in range(customers))
    statuses = sql(database_url, "SELECT status, count(*) FROM kf_reply GROUP BY status")
    assert dict(statuses) == {"sent": 3 * customers}
    bot = sql(database_url, "SELECT count(*) FROM message WHERE direction = 'bot'")[0][0]
    assert bot == 3 * customers  # replies, hand-offs and transfers, each archived once
    if kill_at == "first_send":
        # The messages in flight at the kill were re-sent with their msgid and not redelivered.
        assert delivered_before >= 1 and fake.kf_duplicates >= 1


async def test_two_workers_receiving_events_at_once_run_one_puller(
    tmp_path: Path,
    pg_schema_url: str,
    redis_url: str,
    redis_prefix: str,
    fake_api: tuple[FakeWeCom, str],
) -> None:
    fake, api_base = fake_api
    fake.delay("kf/sync_msg", 0.2)  # a pull takes a while: events meet a running pull
    port = free_port()
    config = write_config(
        tmp_path,
        pg_schema_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        port=port,
        workers=2,
        secret=SECRET,
        api_base=api_base,
        extra="[kf]\nhandoff_after_unanswered = 0\n",
    )
    server = ServerProcess(config, port, workers=2)
    total = 0
    try:
        await asyncio.to_thread(server.wait_ready)
        for batch in range(5):
            fake.add_kf_messages(KF, customers_items(40, 2, f"w{batch}"))
            total += 40
            statuses = await asyncio.gather(*(send_event(server.base, fake) for _ in range(12)))
            assert set(statuses) == {200}
            await until(partial(delivered_at_least, fake, total), 30, "the batch's answers")
            if batch >= 1 and "another worker is pulling" in server.output():
                break
        await until(
            lambda: (
                sql(pg_schema_url, "SELECT count(*) FROM kf_reply WHERE status = 'pending'")
                == [(0,)]
            ),
            30,
            "no kf reply left pending",
        )
        output = server.output()
    finally:
        server.close()
    assert "another worker is pulling" in output, "the two workers never received events at once"
    assert fake.max_concurrent["kf/sync_msg"] == 1  # never two pullers
    answered = [d.touser for d in fake.kf_deliveries]
    assert len(answered) == len(set(answered)) == total  # every customer once, none twice
    assert fake.kf_duplicates == 0 and fake.kf_refused == []
    keys = [r[0] for r in sql(pg_schema_url, "SELECT dedupe_key FROM message WHERE channel='kf'")]
    assert len(keys) == len(set(keys)) == 2 * total + total  # customers' messages + bot replies
