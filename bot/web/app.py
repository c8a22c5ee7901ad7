"""The aiohttp app factory: typed app state, routes, and the resources' ``cleanup_ctx``."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry

from bot.config import Config
from bot.handlers import build_root_router
from bot.handlers.router import Router
from bot.inbound.callback import handle_callback_get, handle_callback_post
from bot.log import RejectLog
from bot.sandbox.pages import add_sandbox_routes
from bot.web.access import metrics_access, sandbox_access
from bot.web.health import Healthz, handle_metrics
from bot.web.keys import CLOCK, CONFIG, CRYPTO, METRICS, REGISTRY, ROUTER, SANDBOX
from bot.web.metrics import BotMetrics
from bot.web.request_id import REJECTS, request_id_middleware
from bot.web.resources import RESOURCES, review_settings
from monitor.review.app import create_review_app
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
        clock: time source for the callback timestamp window, review sessions and login
            lockouts (tests inject a frozen one).
    """
    app = web.Application(
        client_max_size=config.server.max_body_bytes, middlewares=[request_id_middleware]
    )
    app[REJECTS] = RejectLog()
    app[CONFIG] = config
    app[CLOCK] = clock
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
    app[ROUTER] = router or build_root_router()
    app.cleanup_ctx.extend(RESOURCES)

    path = config.server.callback_path
    app.router.add_get(path, handle_callback_get)
    app.router.add_post(path, handle_callback_post)
    app.router.add_get("/healthz", Healthz().handle)
    # /metrics and /sandbox/ are gated (bot/web/access.py); the callback and /healthz are public.
    app.router.add_get("/metrics", metrics_access(config.metrics).guard(handle_metrics))
    if not config.wecom.secret and config.sandbox.enabled:
        # No secret: outbound calls are recorded by the sandbox instead of sent; show them.
        add_sandbox_routes(app, SANDBOX, guard=sandbox_access(config.sandbox).guard)
    # The review web; its services are built by ``review_ctx`` (bot/web/resources.py).
    app.add_subapp(config.review.path, create_review_app(review_settings(config)))
    return app
