"""The daily anchor on both backends against the WeCom emulator: one post a day across workers,
recorded by the emulator and in the audit chain; a failed post is retried, a dead worker's claim
runs out."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from monitor.archive import Archive, GroupCommitWriter, create_schema, make_engine
from monitor.archive.anchor import Anchor, ChainAnchor, anchor_text
from monitor.archive.chain import Chain
from monitor.archive.chain_store import Head, read_heads
from monitor.archive.verify import verify_database
from tests.support.waiting import until
from tests.unit.monitor.test_chain_verify import record
from wecom_sdk.client import WeComClient
from wecom_sdk.testing.fake_api import FakeWeCom

CHAT = "wrAnchorChat01"
DAY1 = datetime(2026, 4, 1, 0, 5, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def engines(database_url: str) -> Iterator[list[Engine]]:
    """Two workers' engines on one database."""
    made = [make_engine(database_url) for _ in range(2)]
    create_schema(made[0])
    yield made
    for engine in made:
        engine.dispose()


@pytest.fixture
async def wecom(aiohttp_server: Any) -> AsyncIterator[tuple[FakeWeCom, WeComClient]]:
    fake = FakeWeCom(app_chats={CHAT})
    server = await aiohttp_server(fake.app)
    async with WeComClient(
        fake.corp_id, str(fake.secret), api_base=str(server.make_url("/cgi-bin/"))
    ) as client:
        yield fake, client


@pytest.fixture
async def writers(engines: list[Engine]) -> AsyncIterator[list[GroupCommitWriter]]:
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(GroupCommitWriter(e)) for e in engines]


def anchors(
    writers: list[GroupCommitWriter], client: WeComClient, clock: Clock
) -> list[ChainAnchor]:
    return [
        ChainAnchor(w, client.appchat, CHAT, owner=f"worker{i}", clock=clock, lease_s=60)
        for i, w in enumerate(writers)
    ]


def anchor_rows(engine: Engine) -> list[tuple[str, dict[str, Any]]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT target, detail FROM audit_event WHERE action = 'anchor' ORDER BY id")
        ).all()
    return [(target, json.loads(detail)) for target, detail in rows]


async def test_one_post_a_day_across_workers_recorded_by_wecom_and_the_audit_chain(
    engines: list[Engine],
    writers: list[GroupCommitWriter],
    wecom: tuple[FakeWeCom, WeComClient],
) -> None:
    fake, client = wecom
    await Archive(writers[0]).store_inbound(record("m1"))
    clock = Clock(DAY1)
    first, second = anchors(writers, client, clock)
    with engines[0].connect() as conn:
        heads = read_heads(conn)
    posted = await asyncio.gather(first.post_if_due(), second.post_if_due())
    assert sorted(p is None for p in posted) == [False, True]  # exactly one worker posted
    assert [p for p in posted if p is not None] == [Anchor("2026-04-01", heads)]
    calls = fake.calls_to("appchat/send")
    assert [c.body for c in calls] == [
        {
            "chatid": CHAT,
            "msgtype": "text",
            "text": {
                "content": "wecom-sentinel hash chain heads, 2026-04-01 (UTC)\n"
                f"archive 1 {heads[Chain.ARCHIVE].block_hash}\n"
                f"audit 0 {'0' * 64}"
            },
            "safe": 0,
        }
    ]
    assert anchor_rows(engines[0]) == [
        (
            CHAT,
            {
                "day": "2026-04-01",
                "archive": {"seq": 1, "hash": heads[Chain.ARCHIVE].block_hash},
                "audit": {"seq": 0, "hash": "0" * 64},
            },
        )
    ]
    clock.now += timedelta(hours=23)  # later the same day: nothing more
    assert await first.post_if_due() is None and await second.post_if_due() is None
    clock.now += timedelta(hours=1)  # the next day: one more post, naming the anchor's block
    again = [await second.post_if_due(), await first.post_if_due()]
    assert again[1] is None and again[0] is not None
    assert again[0].heads[Chain.AUDIT].seq == 1  # the first anchor's own audit block
    assert len(fake.calls_to("appchat/send")) == 2
    assert [day for _, detail in anchor_rows(engines[0]) for day in [detail["day"]]] == [
        "2026-04-01",
        "2026-04-02",
    ]
    assert [r.problem for r in verify_database(engines[0])] == [None, None]


async def test_a_refused_post_is_released_and_retried(
    engines: list[Engine],
    writers: list[GroupCommitWriter],
    wecom: tuple[FakeWeCom, WeComClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, client = wecom
    clock = Clock(DAY1)
    first, second = anchors(writers, client, clock)
    fake.fail_next("appchat/send", 86001)
    assert await first.post_if_due() is None
    assert "chain anchor for 2026-04-01 not posted" in caplog.text
    assert anchor_rows(engines[0]) == []
    posted = await second.post_if_due()  # the claim was released: any worker may retry at once
    assert posted is not None
    assert [c.errcode for c in fake.history if c.path == "appchat/send"] == [86001, 0]
    assert len(anchor_rows(engines[0])) == 1


async def test_a_dead_workers_claim_runs_out(
    engines: list[Engine],
    writers: list[GroupCommitWriter],
    wecom: tuple[FakeWeCom, WeComClient],
) -> None:
    fake, client = wecom
    clock = Clock(DAY1)
    first, second = anchors(writers, client, clock)
    # The first worker claims the day and dies before posting.
    claimed = await writers[0].run(lambda conn: first._claim(conn, "2026-04-01", clock.now))
    assert claimed is not None
    clock.now += timedelta(seconds=59)
    assert await second.post_if_due() is None  # still leased
    assert fake.calls_to("appchat/send") == []
    clock.now += timedelta(seconds=1)
    assert await second.post_if_due() is not None
    assert len(fake.calls_to("appchat/send")) == 1


async def test_run_posts_at_once_and_keeps_checking(
    writers: list[GroupCommitWriter], wecom: tuple[FakeWeCom, WeComClient]
) -> None:
    fake, client = wecom
    clock = Clock(DAY1)
    anchor = ChainAnchor(writers[0], client.appchat, CHAT, clock=clock, check_interval_s=0.01)
    task = asyncio.create_task(anchor.run())
    try:
        await until(lambda: fake.calls_to("appchat/send"), "the first post")
        clock.now += timedelta(days=1)
        await until(lambda: len(fake.calls_to("appchat/send")) == 2, "the next day's post")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    texts = [c.body["text"]["content"].splitlines()[0] for c in fake.calls_to("appchat/send")]
    assert texts == [
        "wecom-sentinel hash chain heads, 2026-04-01 (UTC)",
        "wecom-sentinel hash chain heads, 2026-04-02 (UTC)",
    ]


class BrokenOnce:
    """A poster whose first call fails with something else than a WeCom error (a bug)."""

    def __init__(self, client: WeComClient) -> None:
        self.client, self.calls = client, 0

    async def send_text(self, chatid: str, content: str) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("unexpected")
        return await self.client.appchat.send_text(chatid, content)


async def test_an_unexpected_failure_is_logged_released_and_retried(
    writers: list[GroupCommitWriter],
    wecom: tuple[FakeWeCom, WeComClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, client = wecom
    poster = BrokenOnce(client)
    anchor = ChainAnchor(writers[0], poster, CHAT, clock=Clock(DAY1), check_interval_s=0.01)
    task = asyncio.create_task(anchor.run())
    try:
        await until(lambda: fake.calls_to("appchat/send"), "the post after the failure")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert poster.calls == 2  # released at once: the next check (not the lease's end) retried
    assert "chain anchor check failed" in caplog.text and "RuntimeError" in caplog.text


def test_the_text_lists_the_heads_as_archive_head_prints_them() -> None:
    text_ = anchor_text(
        Anchor("2026-04-01", {Chain.ARCHIVE: Head(12, "a" * 64), Chain.AUDIT: Head(4, "b" * 64)})
    )
    assert text_.splitlines() == [
        "wecom-sentinel hash chain heads, 2026-04-01 (UTC)",
        f"archive 12 {'a' * 64}",
        f"audit 4 {'b' * 64}",
    ]
