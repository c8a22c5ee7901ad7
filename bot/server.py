"""The aiohttp app factory: routes, and every resource created and closed in ``cleanup_ctx``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CollectorRegistry

from bot.callback import handle_callback_get, handle_callback_post
from bot.config import Config
from bot.dedupe import DedupeStore, MemoryDedupe, RedisDedupe
from bot.handlers import build_root_router
from bot.keys import ARCHIVE, CONFIG, CRYPTO, DEDUPE, METRICS, PIPELINE, REGISTRY
from bot.log import server_log
from bot.metrics import BotMetrics
from bot.ops import handle_healthz, handle_metrics
from bot.pipeline import build_pipeline
from bot.router import Router
from monitor import Archive, GroupCommitWriter, create_schema, make_engine
from wecom_sdk.crypto import MsgCrypto

__all__ = ["create_app"]


def create_app(
    config: Config,
    *,
    router: Router | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """Build the bot's web application.

    Args:
        config: validated configuration.
        router: the handler tree; defaults to the shipped handlers (``bot.handlers``).
        clock: time source for the callback timestamp window (tests inject a frozen one).
    """
    app = web.Application(client_max_size=config.server.max_body_bytes)
    app[CONFIG] = config
    app[CRYPTO] = MsgCrypto(
        config.wecom.token,
        config.wecom.encoding_aes_key,
        config.wecom.corp_id,
        max_skew_s=config.server.timestamp_skew_s,
        clock=clock,
    )
    registry = CollectorRegistry()
    app[REGISTRY] = registry
    app[METRICS] = BotMetrics.create(registry)
    root = router or build_root_router()

    async def storage_ctx(app: web.Application) -> AsyncIterator[None]:
        engine = make_engine(
            config.storage.database_url,
            sqlite_synchronous=config.storage.sqlite_synchronous,  # type: ignore[arg-type]
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
        store: DedupeStore
        client: aioredis.Redis | None = None
        if config.storage.redis_url:
            client = aioredis.Redis.from_url(config.storage.redis_url)
            store = RedisDedupe(
                client,
                ttl_s=config.storage.dedupe_ttl_s,
                prefix=f"{config.storage.redis_prefix}dedupe:",
            )
        else:
            store = MemoryDedupe(ttl_s=config.storage.dedupe_ttl_s)
        app[DEDUPE] = store
        try:
            yield
        finally:
            await store.close()
            if client is not None:
                await client.aclose()

    async def pipeline_ctx(app: web.Application) -> AsyncIterator[None]:
        app[PIPELINE] = build_pipeline(
            archive=app[ARCHIVE], dedupe=app[DEDUPE], router=root, metrics=app[METRICS]
        )
        yield

    app.cleanup_ctx.extend([storage_ctx, dedupe_ctx, pipeline_ctx])

    path = config.server.callback_path
    app.router.add_get(path, handle_callback_get)
    app.router.add_post(path, handle_callback_post)
    app.router.add_get("/healthz", handle_healthz)
    app.router.add_get("/metrics", handle_metrics)
    return app
