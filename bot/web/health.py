"""Operational endpoints: ``GET /healthz`` (JSON) and ``GET /metrics`` (Prometheus text)."""

from __future__ import annotations

import asyncio
import os

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.web.keys import ARCHIVE, CONFIG, DEDUPE, REGISTRY, RULES

__all__ = ["handle_healthz", "handle_metrics"]

_PROBE_TIMEOUT_S = 2.0


async def _probe(check: asyncio.Future[None] | asyncio.Task[None]) -> str:
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT_S):
            await check
    except TimeoutError:
        return "timeout"
    except Exception as exc:
        return f"error: {exc.__class__.__name__}"
    return "ok"


async def handle_healthz(request: web.Request) -> web.Response:
    """200 when storage (and Redis, if configured) answer; 503 otherwise, naming what failed.

    Also names the rules version in force, so an operator can see a reload took effect.
    """
    app = request.app
    storage = asyncio.ensure_future(app[ARCHIVE].ping())
    checks = {"storage": await _probe(storage)}
    if app[CONFIG].storage.redis_url:
        checks["redis"] = await _probe(asyncio.ensure_future(app[DEDUPE].ping()))
    else:
        checks["redis"] = "disabled"
    healthy = all(v in ("ok", "disabled") for v in checks.values())
    return web.json_response(
        {
            "status": "ok" if healthy else "unavailable",
            **checks,
            "rules_version": app[RULES].version,
            "pid": os.getpid(),
        },
        status=200 if healthy else 503,
    )


async def handle_metrics(request: web.Request) -> web.Response:
    """The app's Prometheus registry in text exposition format."""
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
