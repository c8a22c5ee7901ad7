"""One puller per kf account: the pull lock (real Redis and the in-process fallback), the
again flag and shared pull tokens, the fencing token that stops a puller whose lock lapsed
(on SQLite and PostgreSQL), and the in-process fallback while Redis is frozen."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy import Engine, text

from bot.config import KfConfig, StorageConfig
from bot.kf.plan import Question
from bot.kf.store import CustomerPage, PageCommit, claim_fence, commit_page
from bot.pull_lock import FencedOut, MemoryPullLocks, PullLocks, RedisPullLocks
from bot.shared_state import create_redis
from monitor.archive import GroupCommitWriter, create_schema, make_engine
from rules.models import Inspection, ReplyRule, TextReplyContent
from tests.support.redis_server import dedicated_redis


@pytest.fixture(params=["memory", "redis"])
async def locks(request: pytest.FixtureRequest) -> AsyncIterator[PullLocks]:
    if request.param == "memory":
        yield MemoryPullLocks()
        return
    # An async fixture cannot ask for another async one (redis_client): build the client here.
    prefix = request.getfixturevalue("redis_prefix")
    client = aioredis.Redis.from_url(request.getfixturevalue("redis_url"))
    yield RedisPullLocks(client, prefix=prefix, lease_s=0.6)
    keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_one_holder_at_a_time_and_release(locks: PullLocks) -> None:
    first = await locks.acquire("wk1")
    assert first is not None and not first.lost
    assert await locks.acquire("wk1") is None
    other = await locks.acquire("wk2")  # accounts are independent
    assert other is not None
    await first.release()
    await first.release()  # idempotent
    second = await locks.acquire("wk1")
    assert second is not None
    await second.release()
    await other.release()


async def test_again_flag_and_tokens(locks: PullLocks) -> None:
    assert not await locks.take_again("wk1")
    await locks.request_again("wk1")
    await locks.request_again("wk1")
    assert await locks.take_again("wk1")
    assert not await locks.take_again("wk1")
    assert await locks.token("wk1") == ""
    await locks.put_token("wk1", "t1")
    await locks.put_token("wk1", "t2")
    await locks.drop_token("wk1", "t1")  # an older token's refusal keeps the newer one
    assert await locks.token("wk1") == "t2"
    await locks.drop_token("wk1", "t2")
    assert await locks.token("wk1") == ""


async def test_redis_lease_is_renewed_while_held_and_never_released_by_another(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    locks = RedisPullLocks(redis_client, prefix=redis_prefix, lease_s=0.6)
    lease = await locks.acquire("wk1")
    assert lease is not None
    await asyncio.sleep(1.5)  # well past the 0.6 s lease: renewed meanwhile
    assert not lease.lost and await locks.acquire("wk1") is None
    # Someone else's lock (ours lapsed and was taken): our release must not delete it.
    key = f"{redis_prefix}kf:lock:wk1"
    await redis_client.set(key, "another-owner", px=5000)
    await asyncio.sleep(0.5)  # the next renewal notices
    assert lease.lost
    await lease.release()
    assert await redis_client.get(key) == b"another-owner"


async def test_redis_lock_lapses_when_its_holder_dies(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    locks = RedisPullLocks(redis_client, prefix=redis_prefix, lease_s=0.3)
    lease = await locks.acquire("wk1")
    assert lease is not None
    lease._renewer.cancel()  # type: ignore[attr-defined]  # the holder is gone (kill -9)
    deadline = time.monotonic() + 3
    taken = None
    while taken is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        taken = await locks.acquire("wk1")
    assert taken is not None
    await taken.release()


# -- fencing ----------------------------------------------------------------------------------


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    create_schema(eng)
    yield eng
    eng.dispose()


def question(n: int) -> Question:
    rule = ReplyRule("发货", ("发货",), "contains", TextReplyContent("48 小时内发货"))
    return Question(f"kf:q{n}", f"q{n}", int(time.time()), "发货", Inspection((), rule, "v"))


async def test_a_stale_puller_can_neither_move_the_cursor_nor_decide(
    writer: GroupCommitWriter, engine: Engine
) -> None:
    now = time.time()
    old_fence, cursor = await writer.run(lambda c: claim_fence(c, "wk1", now))
    assert (old_fence, cursor) == (1, "")
    page = PageCommit(
        "wk1", old_fence, "c1", now, customers=[CustomerPage("wmA", int(now), [question(1)])]
    )
    assert await writer.run(lambda c: commit_page(c, page, KfConfig())) == 1
    new_fence, cursor = await writer.run(lambda c: claim_fence(c, "wk1", now))
    assert (new_fence, cursor) == (2, "c1")
    stale = PageCommit(
        "wk1", old_fence, "c-stale", now, customers=[CustomerPage("wmB", int(now), [question(2)])]
    )
    with pytest.raises(FencedOut):
        await writer.run(lambda c: commit_page(c, stale, KfConfig()))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT cursor, fence FROM kf_cursor")).one() == ("c1", 2)
        decided = conn.execute(text("SELECT dedupe_key FROM kf_decision")).all()
        assert [row[0] for row in decided] == ["kf:q1"]  # the stale page left nothing
    fresh = PageCommit(
        "wk1", new_fence, "c2", now, customers=[CustomerPage("wmA", int(now), [question(1)])]
    )
    # Re-deciding a decided message does nothing (a re-read after a crash).
    assert await writer.run(lambda c: commit_page(c, fresh, KfConfig())) == 0


async def test_redis_away_one_puller_per_process_and_the_fence_keeps_one_writer(
    tmp_path: Path, writer: GroupCommitWriter, engine: Engine
) -> None:
    """Redis frozen: each worker falls back to its own in-process lock within the client's
    deadline (kf keeps pulling); two workers may then pull one account at once, and the fencing
    token lets only the newer one commit."""
    with dedicated_redis(tmp_path) as server:
        clients = [create_redis(StorageConfig(redis_url=server.url)) for _ in range(2)]
        try:
            worker_a, worker_b = (
                RedisPullLocks(client, prefix="test:", lease_s=0.6)
                for client in clients
                if client is not None
            )
            server.freeze()
            start = time.monotonic()
            lease_a = await worker_a.acquire("wk1")
            assert lease_a is not None
            assert await worker_a.acquire("wk1") is None  # still one puller per process
            lease_b = await worker_b.acquire("wk1")  # the other worker cannot see it
            assert lease_b is not None
            await worker_a.put_token("wk1", "t1")
            assert await worker_a.token("wk1") == "t1"
            await worker_a.request_again("wk1")
            assert await worker_a.again_requested("wk1")
            assert await worker_a.take_again("wk1")
            assert not await worker_a.again_requested("wk1")
            assert await worker_a.lease_left("wk1") == 0.0  # no shared holder to wait for
            elapsed = time.monotonic() - start
            print(f"\nfrozen Redis: kf lock calls in {elapsed * 1000:.0f} ms")
            assert elapsed < 2.0

            now = time.time()
            fence_a, _ = await writer.run(lambda c: claim_fence(c, "wk1", now))
            fence_b, _ = await writer.run(lambda c: claim_fence(c, "wk1", now))
            page_a = PageCommit(
                "wk1", fence_a, "c-a", now, customers=[CustomerPage("wmA", int(now), [question(1)])]
            )
            page_b = PageCommit(
                "wk1", fence_b, "c-b", now, customers=[CustomerPage("wmA", int(now), [question(1)])]
            )
            with pytest.raises(FencedOut):
                await writer.run(lambda c: commit_page(c, page_a, KfConfig()))
            assert await writer.run(lambda c: commit_page(c, page_b, KfConfig())) == 1
            with engine.connect() as conn:
                assert conn.execute(text("SELECT cursor FROM kf_cursor")).scalar_one() == "c-b"
                assert conn.execute(text("SELECT count(*) FROM kf_decision")).scalar_one() == 1
            await lease_a.release()
            await lease_b.release()
            assert await worker_a.acquire("wk1") is not None  # released in process
        finally:
            for client in clients:
                if client is not None:
                    await client.aclose()
