"""``serve --workers N`` as an operator runs it: one ``/metrics`` scrape covers every worker, and a
worker killed with -9 is replaced while the others keep answering."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.app import (
    ServerProcess,
    free_port,
    post_many,
    write_config,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def workers_server(
    tmp_path: Path, pg_schema_url: str, redis_url: str, redis_prefix: str
) -> Iterator[ServerProcess]:
    """``run_bot.py serve --workers 2`` on PostgreSQL and Redis, ready to answer."""
    port = free_port()
    config = write_config(
        tmp_path, pg_schema_url, redis_url=redis_url, redis_prefix=redis_prefix, port=port
    )
    server = ServerProcess(config, port, workers=2)
    try:
        server.wait_ready(timeout=60.0)
        yield server
    finally:
        server.close()


def health_pid(base: str) -> int | None:
    """The pid of the worker that answers ``/healthz`` on a new connection (None: no answer)."""
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=2) as resp:
            pid: int = json.load(resp)["pid"]
            return pid
    except OSError:
        return None


async def worker_pids(
    server: ServerProcess, count: int, *, without: set[int] = frozenset(), timeout: float = 60.0
) -> set[int]:
    """Poll ``/healthz`` on new connections until ``count`` workers (none in ``without``) answered."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(seen - without) < count:
        assert time.monotonic() < deadline, f"saw workers {seen}:\n{server.output()}"
        assert server.proc.poll() is None, f"the server exited:\n{server.output()}"
        pid = await asyncio.to_thread(health_pid, server.base)
        if pid is not None:
            seen.add(pid)
    return seen - without


async def post_each_on_a_new_connection(
    base: str, first_id: int, count: int, concurrency: int = 8
) -> dict[int, int | str]:
    """Each message on its own connection; msg_id -> HTTP status, or the client error's name."""
    return await post_many(
        base, first_id, count, concurrency, new_connections=True, record_errors=True
    )


def posts_counted(base: str) -> float:
    """POST callbacks in one scrape of ``/metrics``, over every outcome."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:
        exposition = resp.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(exposition):
        if family.name == "sentinel_callbacks":
            total += sum(
                s.value
                for s in family.samples
                if s.name == "sentinel_callbacks_total" and s.labels["method"] == "POST"
            )
    return total


def reaped(pid: int) -> bool:
    """The process is gone and waited for by its parent.

    Its main thread turning zombie is not enough: the other threads still hold the listening
    socket until they have exited too, and connections the kernel hands to it meanwhile are reset.
    """
    return not Path(f"/proc/{pid}").exists()


async def test_one_scrape_counts_every_workers_callbacks(workers_server: ServerProcess) -> None:
    server = workers_server
    await worker_pids(server, 2)  # both workers answer, so new connections reach both
    count = 60
    answers = await post_each_on_a_new_connection(server.base, 20_000, count)
    assert set(answers.values()) == {200}, answers
    assert await asyncio.to_thread(posts_counted, server.base) == count


async def test_a_worker_killed_with_9_is_restarted_and_the_service_keeps_answering(
    workers_server: ServerProcess,
) -> None:
    server = workers_server
    before = await worker_pids(server, 2)
    first = await post_each_on_a_new_connection(server.base, 30_000, 20)
    assert set(first.values()) == {200}, first
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not reaped(victim):
        assert time.monotonic() < deadline, f"worker {victim} survived kill -9"
        await asyncio.sleep(0.01)
    # While the supervisor replaces it, the surviving worker takes every new connection.
    during = await post_each_on_a_new_connection(server.base, 31_000, 40)
    assert set(during.values()) == {200}, during
    (replacement,) = await worker_pids(server, 1, without=before)
    assert len(await worker_pids(server, 2)) == 2  # the replacement and the survivor
    after = await post_each_on_a_new_connection(server.base, 32_000, 20)
    assert set(after.values()) == {200}, after
    assert server.proc.poll() is None
    log = server.output()
    assert f"pid {victim}" in log and "SIGKILL" in log and "restarting it" in log, log
    assert f"restarted as pid {replacement}" in log, log
    # The killed worker's counts stay in the scrape: all 80 callbacks, whoever answered them.
    assert await asyncio.to_thread(posts_counted, server.base) == 80
    server.signal(signal.SIGTERM)
    assert await asyncio.to_thread(server.wait) == 0, server.output()


async def test_one_worker_with_a_metrics_folder_starts_it_empty(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A single worker also serves from the files when ``PROMETHEUS_MULTIPROC_DIR`` is set, and
    the previous run's files there are not counted again."""
    folder = tmp_path / "prometheus"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    port = free_port()
    config = write_config(tmp_path, sqlite_url, port=port)
    for run, (first_id, count) in enumerate([(40_000, 5), (41_000, 3)]):
        server = ServerProcess(config, port)
        try:
            server.wait_ready(timeout=60.0)
            answers = await post_each_on_a_new_connection(server.base, first_id, count)
            assert set(answers.values()) == {200}, answers
            assert await asyncio.to_thread(posts_counted, server.base) == count, run
            assert any(folder.glob("counter_*.db"))  # the values are in the files
        finally:
            server.close()
