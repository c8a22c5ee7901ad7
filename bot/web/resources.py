"""The app's resources, each created and closed in one ``cleanup_ctx`` generator, in order:
the Redis client (if configured), storage (engine + group-commit writer + archive), shared state
(Redis or in-process: dedupe, reply cooldowns, the split-message window), rules (engine, file
watcher, SIGHUP reload), alerts (WeCom client or sandbox, outbox worker), the review web's services
(over the writer, the outbox and Redis), the daily chain anchor (when configured), the pipeline
that uses them all, the kf puller that feeds the pipeline, and last the handlers' services (which
name the puller).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import redis.asyncio as aioredis
from aiohttp import web

from bot.background import running
from bot.config import Config
from bot.inbound.alert_stage import AlertPolicies, AlertStage, card_style
from bot.inbound.context import Services
from bot.inbound.cooldowns import MemoryCooldowns, RedisCooldowns, ReplyCooldowns
from bot.inbound.dedupe import DedupeStore, MemoryDedupe, RedisDedupe
from bot.inbound.pipeline import build_pipeline
from bot.inbound.split_window import (
    MemorySplitWindow,
    RedisSplitWindow,
    SplitStage,
    SplitWindow,
)
from bot.kf.resource import kf_ctx
from bot.log import pipeline_log, server_log
from bot.msgaudit.resource import msgaudit_ctx
from bot.sampling_task import sampling_ctx
from bot.sandbox.transport import SandboxTransport
from bot.shared_state import create_redis
from bot.web.keys import (
    ALERT_STAGE,
    ARCHIVE,
    CLOCK,
    CONFIG,
    COOLDOWNS,
    DEDUPE,
    KF_PULLER,
    METRICS,
    MSGAUDIT_PULLER,
    OUTBOX,
    PIPELINE,
    REDIS,
    ROUTER,
    RULES,
    SANDBOX,
    SERVICES,
    SPLIT_WINDOW,
    WECOM,
    WRITER,
)
from monitor.alerts.outbox import OutboxSettings, OutboxWorker
from monitor.alerts.policy import RateLimit
from monitor.archive import Archive, GroupCommitWriter, create_schema, make_engine
from monitor.archive.anchor import ChainAnchor
from monitor.archive.sandbox_log import SandboxLog
from monitor.review.keys import REVIEW_SERVICES
from monitor.review.services import build_review_services
from monitor.review.settings import ReviewSettings
from rules.engine import RuleEngine
from wecom_sdk.client import RedisTokenCache, WeComClient

__all__ = ["RESOURCES", "review_settings"]


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """The app's one Redis client (``[storage].redis_url``), closed after everything that uses it."""
    client = create_redis(app[CONFIG].storage)
    if client is None:
        yield
        return
    app[REDIS] = client
    try:
        yield
    finally:
        await client.aclose()


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
        app[WRITER] = writer
        app[ARCHIVE] = Archive(writer)
        yield
    finally:
        # Runs after the server stopped taking requests and drained in-flight ones.
        await writer.close()
        engine.dispose()
        server_log.info("storage closed; pending group commit flushed")


async def shared_state_ctx(app: web.Application) -> AsyncIterator[None]:
    """WeCom-retry dedupe, reply cooldowns and the split-message window: in Redis when
    configured (shared by workers), else in-process."""
    settings = app[CONFIG].storage
    redis = app.get(REDIS)
    dedupe: DedupeStore
    cooldowns: ReplyCooldowns
    if redis is not None:
        dedupe = RedisDedupe(
            redis, ttl_s=settings.dedupe_ttl_s, prefix=f"{settings.redis_prefix}dedupe:"
        )
        cooldowns = RedisCooldowns(redis, prefix=settings.redis_prefix)
    else:
        dedupe = MemoryDedupe(ttl_s=settings.dedupe_ttl_s)
        cooldowns = MemoryCooldowns()
    app[DEDUPE] = dedupe
    app[COOLDOWNS] = cooldowns
    rules = app[CONFIG].rules
    if rules.split_window_on:
        window: SplitWindow
        if redis is not None:
            window = RedisSplitWindow(
                redis,
                prefix=settings.redis_prefix,
                messages=rules.split_window_messages,
                ttl_s=rules.split_window_s,
            )
        else:
            window = MemorySplitWindow(messages=rules.split_window_messages)
        app[SPLIT_WINDOW] = window
    try:
        yield
    finally:
        await dedupe.close()


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


def _wecom_client(
    config: Config, writer: GroupCommitWriter, redis: aioredis.Redis | None
) -> tuple[WeComClient, SandboxLog | None]:
    """The real API client when a secret is configured, else one that talks to the sandbox."""
    wc = config.wecom
    agent_id = int(wc.agent_id) if wc.agent_id else None
    if wc.secret:
        cache = (
            RedisTokenCache(redis, prefix=f"{config.storage.redis_prefix}wecom:")
            if redis is not None
            else None
        )
        client = WeComClient(
            wc.corp_id, wc.secret, api_base=wc.api_base, agent_id=agent_id, token_cache=cache
        )
        return client, None
    log = SandboxLog(writer)
    transport = SandboxTransport(log, wc.corp_id, agent_id)
    client = WeComClient(
        wc.corp_id, "sandbox", api_base=wc.api_base, agent_id=agent_id, transport=transport
    )
    return client, log


async def alerts_ctx(app: web.Application) -> AsyncIterator[None]:
    """Manager alerts: the WeCom client (or the sandbox), the outbox worker and the alert stage."""
    config = app[CONFIG]
    client, sandbox = _wecom_client(config, app[WRITER], app.get(REDIS))
    app[WECOM] = client
    if sandbox is not None:
        app[SANDBOX] = sandbox
        server_log.info("no [wecom].secret: outbound WeCom calls go to the sandbox (/sandbox/)")
    policies = AlertPolicies(config, app[RULES])
    style = card_style(config)
    alerts = config.alerts
    worker = OutboxWorker(
        app[WRITER],
        client,
        policies.current,
        style,
        settings=OutboxSettings(robot_webhook=alerts.robot_webhook),
        rate=RateLimit(per_minute=alerts.max_per_minute, per_hour=alerts.max_per_hour),
        metrics=app[METRICS],
    )
    app[OUTBOX] = worker
    app[ALERT_STAGE] = AlertStage(policies, style, app[METRICS], worker.wake)
    try:
        async with running(worker.run(), "sentinel-outbox"):
            yield
    finally:
        await client.close()


def review_settings(config: Config) -> ReviewSettings:
    """The review web's settings from ``[review]`` (and ``[alerts]``: whom 升级 goes to;
    ``[msgaudit]``: where media files are)."""
    review = config.review
    return ReviewSettings(
        path=review.path,
        idle_timeout_s=review.idle_timeout_min * 60,
        secure_cookie=review.secure_cookie,
        lockout_failures=review.lockout_failures,
        lockout_window_s=review.lockout_minutes * 60,
        escalate_to=config.alerts.escalate_to or config.alerts.managers,
        media_dir=config.msgaudit.media_dir,
        rule_paths=tuple(config.rules.paths),
        rules_reload_s=config.rules.reload_interval_s,
        pseudonymise=review.pseudonymise,
        pseudonym_key=review.pseudonym_key,
        reveal_minutes=review.reveal_minutes,
        sample_rate=review.sample_rate,
    )


async def review_ctx(app: web.Application) -> AsyncIterator[None]:
    """The review web's services: accounts, sessions and lockouts (in Redis when configured),
    over the writer and the outbox worker (an escalation from the web sends a card)."""
    config = app[CONFIG]
    clock = app[CLOCK]
    app[REVIEW_SERVICES] = build_review_services(
        review_settings(config),
        writer=app[WRITER],
        card_style=card_style(config),
        wake_outbox=app[OUTBOX].wake,
        redis=app.get(REDIS),
        redis_prefix=config.storage.redis_prefix,
        clock=lambda: datetime.fromtimestamp(clock(), UTC),
    )
    yield


async def anchor_ctx(app: web.Application) -> AsyncIterator[None]:
    """The daily post of the hash chains' heads to ``[archive].anchor_chat`` (if set)."""
    chat = app[CONFIG].archive.anchor_chat
    if not chat:
        yield
        return
    anchor = ChainAnchor(app[WRITER], app[WECOM].appchat, chat)
    async with running(anchor.run(), "sentinel-chain-anchor"):
        yield


async def pipeline_ctx(app: web.Application) -> AsyncIterator[None]:
    """The inbound pipeline over the resources above."""
    window = app.get(SPLIT_WINDOW)
    rules = app[CONFIG].rules
    split = (
        SplitStage(window, app[RULES], rules.split_window_messages, rules.split_window_s)
        if window is not None
        else None
    )
    app[PIPELINE] = build_pipeline(
        archive=app[ARCHIVE],
        dedupe=app[DEDUPE],
        rules=app[RULES],
        cooldowns=app[COOLDOWNS],
        router=app[ROUTER],
        metrics=app[METRICS],
        alerts=app[ALERT_STAGE],
        split=split,
    )
    yield


async def services_ctx(app: web.Application) -> AsyncIterator[None]:
    """What handlers get besides the message; after the pullers, which take their notices."""
    app[SERVICES] = Services(
        app[CONFIG],
        pipeline_log,
        kf_puller=app.get(KF_PULLER),
        msgaudit_puller=app.get(MSGAUDIT_PULLER),
    )
    yield


RESOURCES = (
    redis_ctx,
    storage_ctx,
    shared_state_ctx,
    rules_ctx,
    alerts_ctx,
    review_ctx,
    anchor_ctx,
    sampling_ctx,
    pipeline_ctx,
    kf_ctx,
    msgaudit_ctx,
    services_ctx,
)
