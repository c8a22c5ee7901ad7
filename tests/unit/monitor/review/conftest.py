"""Fixtures of the review-web tests: a movable clock, storage on each backend, a review app."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from sqlalchemy import Engine

from monitor.archive import create_schema, make_engine


@dataclass
class FakeClock:
    """Now, moved by hand."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2025, 3, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    create_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture(params=["database", "redis"])
def redis_or_none(request: pytest.FixtureRequest) -> aioredis.Redis | None:
    """Sessions and lockouts in the database (None), or in the real Redis (a client whose keys
    under the test's ``redis_prefix`` are removed afterwards)."""
    if request.param == "database":
        return None
    client: aioredis.Redis = request.getfixturevalue("redis_client")
    return client
