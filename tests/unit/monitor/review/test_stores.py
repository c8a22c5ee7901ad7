"""Sessions and the login lockout on each backend: SQLite, PostgreSQL, and the real Redis."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select

from monitor.archive import GroupCommitWriter
from monitor.review.models import ReviewSessionRecord
from monitor.review.sessions import TOUCH_AFTER_S, token_hash
from monitor.review.settings import ReviewSettings
from tests.support.review import review_services
from tests.unit.monitor.review.conftest import FakeClock

SETTINGS = ReviewSettings(
    idle_timeout_s=600, session_max_age_s=3600, lockout_failures=3, lockout_window_s=900
)


@pytest.fixture
def services(
    writer: GroupCommitWriter,
    redis_or_none: aioredis.Redis | None,
    redis_prefix: str,
    clock: FakeClock,
):
    return review_services(
        writer, SETTINGS, redis=redis_or_none, redis_prefix=redis_prefix, clock=clock
    )


async def test_session_resumes_until_idle_timeout(services, clock: FakeClock) -> None:
    token, started = await services.sessions.start("alice", "10.0.0.1")
    resumed = await services.sessions.resume(token)
    assert resumed is not None
    assert (resumed.username, resumed.csrf_token) == ("alice", started.csrf_token)
    assert await services.sessions.resume("not-a-token") is None
    # Used every 5 minutes, it lives past the idle timeout (10 min) ...
    for _ in range(4):
        clock.advance(300)
        assert await services.sessions.resume(token) is not None
    # ... unused for longer than it, it is over, and stays over.
    clock.advance(601)
    assert await services.sessions.resume(token) is None
    clock.advance(-601)
    assert await services.sessions.resume(token) is None


async def test_session_max_age_ends_a_busy_session(services, clock: FakeClock) -> None:
    token, _ = await services.sessions.start("alice", "")
    for _ in range(12):  # one request every 5 minutes for an hour
        clock.advance(300)
        assert await services.sessions.resume(token) is not None
    clock.advance(1)
    assert await services.sessions.resume(token) is None


async def test_session_end_and_stored_hash_only(
    services, writer: GroupCommitWriter, redis_or_none, redis_prefix: str
) -> None:
    token, _ = await services.sessions.start("alice", "")
    if redis_or_none is None:
        with writer.engine.connect() as conn:
            keys = list(conn.execute(select(ReviewSessionRecord.__table__.c.token_hash)).scalars())
    else:
        keys = [
            k.decode().rsplit(":", 1)[1]
            async for k in redis_or_none.scan_iter(match=f"{redis_prefix}review:session:*")
        ]
    assert keys == [token_hash(token)]
    assert token not in keys
    await services.sessions.end(token)
    assert await services.sessions.resume(token) is None


async def test_last_use_written_at_most_once_a_minute(services, clock: FakeClock) -> None:
    token, _ = await services.sessions.start("alice", "")
    key = token_hash(token)
    clock.advance(TOUCH_AFTER_S - 1)
    await services.sessions.resume(token)
    stored = await services.sessions.store.load(key)
    assert stored.last_seen_at == stored.created_at
    clock.advance(1)
    await services.sessions.resume(token)
    stored = await services.sessions.store.load(key)
    assert stored.last_seen_at == clock.now


async def test_database_sessions_swept_at_login(
    writer: GroupCommitWriter, clock: FakeClock
) -> None:
    services = review_services(writer, SETTINGS, clock=clock)
    await services.sessions.start("alice", "")
    clock.advance(601)
    await services.sessions.start("bob", "")
    with writer.engine.connect() as conn:
        users = list(conn.execute(select(ReviewSessionRecord.__table__.c.username)).scalars())
    assert users == ["bob"]


async def test_lockout_per_account_lifts_as_failures_age(services, clock: FakeClock) -> None:
    throttle = services.throttle
    for i in range(3):  # from three different addresses
        assert await throttle.locked_for("alice", f"10.0.0.{i}") == 0
        await throttle.failed("alice", f"10.0.0.{i}")
        clock.advance(60)
    # The account is locked from any address; another account from those addresses is not.
    wait = await throttle.locked_for("alice", "10.9.9.9")
    assert wait == 900 - 180
    assert await throttle.locked_for("bob", "10.0.0.1") == 0
    # The first failure ages out at 900 s: the lock lifts then, not before.
    clock.advance(wait - 1)
    assert await throttle.locked_for("alice", "10.9.9.9") == 1
    clock.advance(1)
    assert await throttle.locked_for("alice", "10.9.9.9") == 0


async def test_lockout_per_address(services, clock: FakeClock) -> None:
    throttle = services.throttle
    for name in ("a1", "a2", "a3"):
        await throttle.failed(name, "10.0.0.7")
    assert await throttle.locked_for("someone-else", "10.0.0.7") == 900
    assert await throttle.locked_for("someone-else", "10.0.0.8") == 0
    # A successful login clears its account's failures, not the address's.
    await throttle.succeeded("a1")
    assert await throttle.locked_for("someone-else", "10.0.0.7") == 900
    clock.advance(900)
    assert await throttle.locked_for("someone-else", "10.0.0.7") == 0


async def test_success_clears_account_failures(services) -> None:
    throttle = services.throttle
    await throttle.failed("alice", "10.0.0.1")
    await throttle.failed("alice", "10.0.0.2")
    await throttle.succeeded("alice")
    await throttle.failed("alice", "10.0.0.3")
    await throttle.failed("alice", "10.0.0.4")
    assert await throttle.locked_for("alice", "10.0.0.5") == 0


async def test_database_failures_pruned(writer: GroupCommitWriter, clock: FakeClock) -> None:
    from monitor.review.models import LoginFailureRecord

    services = review_services(writer, SETTINGS, clock=clock)
    await services.throttle.failed("alice", "10.0.0.1")
    clock.advance(901)
    await services.throttle.failed("alice", "10.0.0.1")
    with writer.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(LoginFailureRecord.__table__))
        assert count.scalar_one() == 2  # the two of the second attempt; the first two are gone
