"""``kf_ctx``: the kf puller as an app resource (after the pipeline it feeds).

Creates the pull locks (Redis when ``[storage].redis_url`` is set, else in-process), the puller
and its periodic pass, and binds the ``kf_msg_or_event`` handler to it. On shutdown the pulls
are cancelled before the pipeline and storage close; that loses nothing (the cursor only moves
with a committed page, pending actions are re-sent by the next puller).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from aiohttp import web

from bot.handlers.kf_events import bind_kf_notices
from bot.kf.lock import MemoryPullLocks, PullLocks, RedisPullLocks
from bot.kf.log import kf_log
from bot.kf.puller import KfPuller
from bot.web.keys import (
    ARCHIVE,
    CONFIG,
    KF_PULLER,
    METRICS,
    PIPELINE,
    ROUTER,
    RULES,
    WECOM,
    WRITER,
)

__all__ = ["kf_ctx"]


async def kf_ctx(app: web.Application) -> AsyncIterator[None]:
    """The kf puller, its periodic pass and the callback binding; all stopped on cleanup."""
    config = app[CONFIG]
    if not config.kf.enabled:
        kf_log.info("[kf].enabled = false: kf_msg_or_event callbacks are archived, not pulled")
        yield
        return
    redis: aioredis.Redis | None = None
    locks: PullLocks
    if config.storage.redis_url:
        redis = aioredis.Redis.from_url(config.storage.redis_url)
        locks = RedisPullLocks(redis, prefix=config.storage.redis_prefix)
    else:
        locks = MemoryPullLocks()
    puller = KfPuller(
        client=app[WECOM],
        pipeline=app[PIPELINE],
        config=config,
        writer=app[WRITER],
        archive=app[ARCHIVE],
        rules=app[RULES],
        locks=locks,
        metrics=app[METRICS],
    )
    app[KF_PULLER] = puller
    bind_kf_notices(app[ROUTER], puller.notify)
    periodic = asyncio.create_task(puller.run_periodic(), name="sentinel-kf-periodic")
    try:
        yield
    finally:
        bind_kf_notices(app[ROUTER], None)
        periodic.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await periodic
        await puller.close()
        await locks.close()
        if redis is not None:
            await redis.aclose()
