"""The app's resources, each created and closed in one ``cleanup_ctx`` generator, in order:
storage (engine + group-commit writer + archive), dedupe (Redis or in-process), rules (engine,
file watcher, SIGHUP reload), then the pipeline that uses them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from aiohttp import web

from bot.dedupe import DedupeStore, MemoryDedupe, RedisDedupe
from bot.keys import ARCHIVE, CONFIG, DEDUPE, METRICS, PIPELINE, ROUTER, RULES
from bot.log import server_log
from bot.pipeline import build_pipeline
from monitor import Archive, GroupCommitWriter, create_schema, make_engine
from rules.engine import RuleEngine

__all__ = ["RESOURCES"]


async def storage_ctx(app: web.Application) -> AsyncIterator[None]:
    """The archive: engine, schema, group-commit writer; flushed and closed last."""
    settings = app[CONFIG].storage
    engine = make_engine(
        settings.database_url,
        sqlite_synchronous=settings.sqlite_synchronous,  # type: ignore[arg-type]
    )
    writer = GroupCommitWriter(engine, on_commit=app[METRICS].observe_commit)
    try:
        create_schema(engine)
        await writer.start()
        app[ARCHIVE] = Archive(writer)
        yield
    finally:
        # Runs after the server stopped taking requests and drained in-flight ones.
        await writer.close()
        engine.dispose()
        server_log.info("storage closed; pending group commit flushed")


async def dedupe_ctx(app: web.Application) -> AsyncIterator[None]:
    """WeCom-retry dedupe: Redis when configured (shared by workers), else in-process."""
    settings = app[CONFIG].storage
    store: DedupeStore
    client: aioredis.Redis | None = None
    if settings.redis_url:
        client = aioredis.Redis.from_url(settings.redis_url)
        store = RedisDedupe(
            client, ttl_s=settings.dedupe_ttl_s, prefix=f"{settings.redis_prefix}dedupe:"
        )
    else:
        store = MemoryDedupe(ttl_s=settings.dedupe_ttl_s)
    app[DEDUPE] = store
    try:
        yield
    finally:
        await store.close()
        if client is not None:
            await client.aclose()


async def rules_ctx(app: web.Application) -> AsyncIterator[None]:
    """The rule engine, its file watcher and a SIGHUP handler that reloads at once."""
    settings = app[CONFIG].rules
    # Loading jieba's dictionary and compiling take a moment: off the event loop.
    engine = await asyncio.to_thread(
        RuleEngine, settings.paths, poll_interval_s=settings.reload_interval_s
    )
    app[RULES] = engine
    watcher = asyncio.create_task(engine.watch(), name="sentinel-rules-watch")
    loop = asyncio.get_running_loop()
    reloading: set[asyncio.Task[bool]] = set()

    def on_sighup() -> None:
        task = asyncio.ensure_future(asyncio.to_thread(engine.reload))
        reloading.add(task)
        task.add_done_callback(reloading.discard)

    hooked = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGHUP, on_sighup)  # main thread, POSIX only
        hooked = True
    server_log.info("rules version %s loaded from %s", engine.version, settings.paths)
    try:
        yield
    finally:
        if hooked:
            loop.remove_signal_handler(signal.SIGHUP)
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def pipeline_ctx(app: web.Application) -> AsyncIterator[None]:
    """The inbound pipeline over the resources above."""
    app[PIPELINE] = build_pipeline(
        archive=app[ARCHIVE],
        dedupe=app[DEDUPE],
        rules=app[RULES],
        router=app[ROUTER],
        metrics=app[METRICS],
    )
    yield


RESOURCES = (storage_ctx, dedupe_ctx, rules_ctx, pipeline_ctx)
