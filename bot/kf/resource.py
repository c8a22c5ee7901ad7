"""``kf_ctx``: the kf puller as an app resource (after the pipeline it feeds).

Creates the pull locks (on the app's Redis client when there is one, else in-process), the
puller and its periodic pass. The puller is ``app[KF_PULLER]``; the handlers' services hand it
the ``kf_msg_or_event`` notices. On shutdown the pulls are cancelled before the pipeline and
storage close; that loses nothing (the cursor only moves with a committed page, pending actions
are re-sent by the next puller).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from bot.background import running
from bot.kf.log import kf_log
from bot.kf.puller import KfPuller
from bot.pull_lock import MemoryPullLocks, PullLocks, RedisPullLocks
from bot.web.keys import (
    ARCHIVE,
    CONFIG,
    KF_PULLER,
    METRICS,
    PERIODIC,
    PIPELINE,
    REDIS,
    RULES,
    WECOM,
    WRITER,
)

__all__ = ["kf_ctx"]


async def kf_ctx(app: web.Application) -> AsyncIterator[None]:
    """The kf puller and its periodic pass; both stopped on cleanup."""
    config = app[CONFIG]
    if not config.kf.enabled:
        kf_log.info("[kf].enabled = false: kf_msg_or_event callbacks are archived, not pulled")
        yield
        return
    redis = app.get(REDIS)
    locks: PullLocks = (
        RedisPullLocks(redis, prefix=config.storage.redis_prefix)
        if redis is not None
        else MemoryPullLocks()
    )
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
    periodic = puller.run_periodic() if app.get(PERIODIC, True) else None
    try:
        async with running(periodic, "sentinel-kf-periodic"):
            yield
    finally:
        await puller.close()
        await locks.close()
