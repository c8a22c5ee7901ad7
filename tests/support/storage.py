"""Fixtures and helpers shared by the storage tests (test_db, test_archive, the chain tests).

Each test module defines its own ``engine`` fixture (with the tables it needs; ``schema_engine``
when that is the whole schema at head); the fixtures here build on whichever ``engine`` the
requesting module provides.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import Connection, Engine, event

from monitor.archive import GroupCommitWriter, create_schema, make_engine
from tests.support.waiting import until

__all__ = ["Gate", "closing", "commits", "queued", "schema_engine", "statements", "writer"]


@pytest.fixture
def schema_engine(database_url: str) -> Iterator[Engine]:
    """An engine on the test's database (both backends) with the schema at head."""
    eng = make_engine(database_url)
    create_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def commits() -> list[int]:
    """Batch sizes, one entry per committed transaction (the writer's on_commit hook)."""
    return []


@pytest.fixture
async def writer(engine: Engine, commits: list[int]) -> AsyncIterator[GroupCommitWriter]:
    """A started writer on the module's engine, closed (and flushed) after the test."""
    async with GroupCommitWriter(engine, on_commit=lambda size, _s: commits.append(size)) as w:
        yield w


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    """Every SQL statement sent to the database (BEGIN included on SQLite), in order."""
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


class Gate:
    """A unit holding the writer thread until released, so the next units queue up as one batch."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, conn: Connection) -> str:
        self.entered.set()
        self.release.wait(10)
        return "gate"

    async def hold(self, writer: GroupCommitWriter) -> asyncio.Task[str]:
        task = asyncio.create_task(writer.run(self))
        assert await asyncio.to_thread(self.entered.wait, 5)
        return task


async def queued(writer: GroupCommitWriter, count: int) -> None:
    """Wait until ``count`` units are pending and handed to the writer thread, so that a held
    writer (a :class:`Gate`) takes them as one batch once released."""
    await until(
        lambda: writer.pending == count and not writer._staged,
        f"{count} units queued for the writer",
    )


async def closing(writer: GroupCommitWriter) -> asyncio.Task[None]:
    """Start ``writer.close()`` and return once it has stopped accepting work."""
    task = asyncio.create_task(writer.close())
    await until(lambda: writer._closed, "close() to stop accepting work")
    return task
