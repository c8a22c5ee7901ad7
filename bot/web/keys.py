"""Typed application state: every resource the app owns is declared here as a ``web.AppKey``.

Nothing lives in module globals, which is what makes ``serve --workers N`` safe: each worker process
builds its own app and its own resources in ``cleanup_ctx``.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry

from bot.config import Config
from bot.handlers.router import Router
from bot.inbound.alert_stage import AlertStage
from bot.inbound.context import Services
from bot.inbound.cooldowns import ReplyCooldowns
from bot.inbound.dedupe import DedupeStore
from bot.inbound.pipeline import Pipeline
from bot.inbound.split_window import SplitWindow
from bot.kf.puller import KfPuller
from bot.msgaudit.puller import MsgauditPuller
from bot.shared_state import GuardedRedis
from bot.web.metrics import BotMetrics
from monitor.alerts.outbox import OutboxWorker
from monitor.archive.sandbox_log import SandboxLog
from monitor.archive.store import Archive
from monitor.archive.writer import GroupCommitWriter
from rules.engine import RuleEngine
from wecom_sdk.client import WeComClient
from wecom_sdk.crypto import MsgCrypto

__all__ = [
    "ALERT_STAGE",
    "ARCHIVE",
    "CLOCK",
    "CONFIG",
    "COOLDOWNS",
    "CRYPTO",
    "DEDUPE",
    "KF_PULLER",
    "METRICS",
    "MSGAUDIT_PULLER",
    "OUTBOX",
    "PERIODIC",
    "PIPELINE",
    "REDIS",
    "REGISTRY",
    "ROUTER",
    "RULES",
    "SANDBOX",
    "SERVICES",
    "SPLIT_WINDOW",
    "WECOM",
    "WRITER",
]

CONFIG = web.AppKey("config", Config)
#: The app's time source (epoch seconds): the callback timestamp window, review sessions and lockouts.
CLOCK = web.AppKey[Callable[[], float]]("clock")
CRYPTO = web.AppKey("crypto", MsgCrypto)
ARCHIVE = web.AppKey("archive", Archive)
#: The app's one Redis client (``bot.shared_state``); absent when ``[storage].redis_url`` is empty.
REDIS = web.AppKey("redis", GuardedRedis)
DEDUPE = web.AppKey("dedupe", DedupeStore)
COOLDOWNS = web.AppKey("cooldowns", ReplyCooldowns)
#: Each sender's recent messages (words split over them); absent when ``[rules]`` turns it off.
SPLIT_WINDOW = web.AppKey("split_window", SplitWindow)
PIPELINE = web.AppKey("pipeline", Pipeline)
REGISTRY = web.AppKey("registry", CollectorRegistry)
METRICS = web.AppKey("metrics", BotMetrics)
RULES = web.AppKey("rules", RuleEngine)
ROUTER = web.AppKey("router", Router)
WRITER = web.AppKey("writer", GroupCommitWriter)
WECOM = web.AppKey("wecom", WeComClient)
OUTBOX = web.AppKey("outbox", OutboxWorker)
ALERT_STAGE = web.AppKey("alert_stage", AlertStage)
#: What handlers get besides the message (config, log, the kf puller), in every ``Context``.
SERVICES = web.AppKey("services", Services)
#: The 微信客服 puller; absent when ``[kf].enabled`` is false.
KF_PULLER = web.AppKey("kf_puller", KfPuller)
#: The conversation archive (会话内容存档) puller; absent when ``[msgaudit].enabled`` is false.
MSGAUDIT_PULLER = web.AppKey("msgaudit_puller", MsgauditPuller)
#: False for a one-shot command that runs the app's stack without serving (``msgaudit pull
#: --once``): the pullers start no periodic pass. Absent = True.
PERIODIC = web.AppKey("periodic", bool)
#: Set only when no ``[wecom].secret`` is configured: outbound calls are recorded, not sent.
SANDBOX = web.AppKey("sandbox", SandboxLog)
