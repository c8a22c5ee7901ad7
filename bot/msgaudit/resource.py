"""``msgaudit_ctx``: the conversation archive puller as an app resource (after the pipeline).

Opens the archive source (the vendor library when ``[msgaudit] sdk_path`` is set, else the fake
source file), the pull lock (Redis when configured, else in-process), the customer name directory,
the lag watch and the puller with its periodic pass. The puller is ``app[MSGAUDIT_PULLER]``; the
handlers' services hand it the ``msgaudit_notify`` notices. On shutdown the pull is cancelled
before the pipeline and storage close; that loses nothing (the cursor only moves with a
committed page).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

from aiohttp import web

from bot.background import running
from bot.config import Config, load_config
from bot.directory import NameDirectory
from bot.msgaudit.lag import LagWatch
from bot.msgaudit.log import msgaudit_log
from bot.msgaudit.media import MediaFetcher
from bot.msgaudit.puller import MsgauditPuller
from bot.pull_lock import MemoryPullLocks, PullLocks, RedisPullLocks
from bot.web.keys import (
    CONFIG,
    METRICS,
    MSGAUDIT_PULLER,
    PERIODIC,
    PIPELINE,
    REDIS,
    WECOM,
    WRITER,
)
from monitor.archive.media_store import MediaStore
from wecom_sdk.msgaudit import ArchiveSource
from wecom_sdk.msgaudit.fake import FakeArchiveSource
from wecom_sdk.msgaudit.keyring import KeyRing
from wecom_sdk.msgaudit.vendor import VendorArchiveSource

__all__ = ["load_keys", "msgaudit_ctx", "open_source"]


def open_source(config: Config) -> ArchiveSource:
    """The vendor library when ``sdk_path`` is set, else the fake source file.

    Raises:
        wecom_sdk.errors.ArchiveError: the vendor library cannot be loaded or refused the secret.
    """
    settings = config.msgaudit
    if settings.sdk_path:
        return VendorArchiveSource(
            settings.sdk_path,
            config.wecom.corp_id,
            settings.secret,
            proxy=settings.proxy,
            proxy_password=settings.proxy_password,
        )
    return FakeArchiveSource(settings.fake_source)


def load_keys(config: Config) -> KeyRing:
    """The private keys as the config file says NOW (``msgaudit keys reload`` adds versions
    without a restart); the loaded config's own when it came from no file.

    Raises:
        wecom_sdk.errors.WeComError: a key file is missing or unreadable.
        bot.config.ConfigError: the config file no longer loads.
    """
    settings = load_config(config.source).msgaudit if config.source else config.msgaudit
    return KeyRing.from_files(settings.private_keys)


class _Downloads:
    """Media downloads in one background task at a time, started after each pull round; an
    hourly sweep of temp files a killed download left behind."""

    _SWEEP_EVERY_S = 3600.0

    def __init__(self, media: MediaFetcher, store: MediaStore) -> None:
        self._media = media
        self._store = store
        self._swept_at = -self._SWEEP_EVERY_S
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="sentinel-msgaudit-media")

    async def _run(self) -> None:
        try:
            now = time.monotonic()
            if now - self._swept_at >= self._SWEEP_EVERY_S:
                self._swept_at = now
                await asyncio.to_thread(self._store.sweep_tmp)
            await self._media.fetch_pending()
        except Exception:  # a bug: the next round starts another pass
            msgaudit_log.exception("msgaudit: media pass failed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def msgaudit_ctx(app: web.Application) -> AsyncIterator[None]:
    """The archive puller and its periodic pass; both stopped on cleanup."""
    config = app[CONFIG]
    if not config.msgaudit.enabled:
        yield
        return
    source = open_source(config)
    redis = app.get(REDIS)
    locks: PullLocks = (
        RedisPullLocks(redis, prefix=config.storage.redis_prefix, namespace="msgaudit")
        if redis is not None
        else MemoryPullLocks()
    )
    lag = LagWatch(writer=app[WRITER], client=app[WECOM], config=config, metrics=app[METRICS])
    store = MediaStore(Path(config.msgaudit.media_dir))
    downloads = _Downloads(MediaFetcher(source, app[WRITER], store, config.msgaudit), store)

    async def after_round() -> None:
        downloads.kick()  # outside the pull lock: claims keep workers apart
        await lag.check()

    names = NameDirectory(app[WECOM], redis=redis, prefix=config.storage.redis_prefix)
    puller = MsgauditPuller(
        source=source,
        load_keys=partial(load_keys, config),
        pipeline=app[PIPELINE],
        config=config,
        writer=app[WRITER],
        locks=locks,
        names=names,
        after_round=after_round,
        metrics=app[METRICS],
    )
    app[MSGAUDIT_PULLER] = puller
    periodic = puller.run_periodic() if app.get(PERIODIC, True) else None
    msgaudit_log.info("msgaudit: pulling every %.0f s", config.msgaudit.poll_interval_s)
    try:
        async with running(periodic, "sentinel-msgaudit-periodic"):
            yield
    finally:
        await puller.close()
        await downloads.close()
        await locks.close()
        await asyncio.to_thread(source.close)
