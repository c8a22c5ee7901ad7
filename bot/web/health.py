"""Operational endpoints: ``GET /healthz`` (JSON) and ``GET /metrics`` (Prometheus text).

``/healthz`` probes each dependency at once, each within a bound (storage: a ``SELECT 1`` through
the group-commit writer, at most :data:`STORAGE_PROBE_S`; Redis: a ``PING`` through the client's
guard, at most ``[storage] redis_timeout_ms``, or nothing while its breaker is open), so it
answers quickly whatever hangs. It says::

    {"status": "ok" | "degraded" | "down",
     "dependencies": {
       "storage": {"ok": true, "since": "<ISO time>", "latency_ms": 1.2},
       "redis": {"ok": false, "enabled": true, "since": "<ISO time>", "error": "...",
                 "circuit": "open", "latency_ms": 0.1}},
     "storage": "ok", "redis": "unavailable",
     "rules_version": "...", "pid": 1234}

200 while messages can be stored: ``"ok"``, or ``"degraded"`` when Redis is configured and away
(callbacks are still stored and answered, see ``bot.redis_guard``); 503 ``"down"`` only when
storage is. ``since`` is when the dependency's current state began; the top-level ``storage`` and
``redis`` strings are the short form of the same.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.shared_state import GuardedRedis
from bot.web.keys import ARCHIVE, REDIS, REGISTRY, RULES

__all__ = ["STORAGE_PROBE_S", "Healthz", "handle_metrics"]

#: The longest the storage probe may take (a frozen database is "down" after this).
STORAGE_PROBE_S = 2.0


@dataclass(frozen=True, slots=True)
class _Probe:
    error: str  # "" when the dependency answered
    latency_ms: float


async def _probe(check: Callable[[], Awaitable[object]], bound_s: float) -> _Probe:
    start = time.monotonic()
    try:
        async with asyncio.timeout(bound_s):
            await check()
    except TimeoutError:
        error = f"no answer within {bound_s * 1000:.0f} ms"
    except Exception as exc:
        text = str(exc).strip()
        error = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    else:
        error = ""
    return _Probe(error, round((time.monotonic() - start) * 1000, 1))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


class _Since:
    """When a dependency's probed state (ok or not) last changed."""

    def __init__(self) -> None:
        self._ok = True
        self._since = datetime.now(UTC)

    def observe(self, ok: bool) -> datetime:
        if ok is not self._ok:
            self._ok, self._since = ok, datetime.now(UTC)
        return self._since


class Healthz:
    """The ``GET /healthz`` handler of one app (it remembers since when storage is up or down)."""

    def __init__(self) -> None:
        self._storage_since = _Since()

    async def handle(self, request: web.Request) -> web.Response:
        """The health report; 503 only when storage is down."""
        app = request.app
        redis = app.get(REDIS)
        storage_probe, redis_probe = await asyncio.gather(
            _probe(app[ARCHIVE].ping, STORAGE_PROBE_S),
            self._probe_redis(redis),
        )
        storage_ok = not storage_probe.error
        storage: dict[str, Any] = {
            "ok": storage_ok,
            "since": _iso(self._storage_since.observe(storage_ok)),
            "latency_ms": storage_probe.latency_ms,
        }
        if not storage_ok:
            storage["error"] = storage_probe.error
        redis_entry = self._redis_entry(redis, redis_probe)
        if not storage_ok:
            status, code = "down", 503
        elif not redis_entry["ok"]:
            status, code = "degraded", 200
        else:
            status, code = "ok", 200
        redis_short = "ok" if redis_entry["ok"] else "unavailable"
        if not redis_entry["enabled"]:
            redis_short = "disabled"
        return web.json_response(
            {
                "status": status,
                "dependencies": {"storage": storage, "redis": redis_entry},
                "storage": "ok" if storage_ok else "unavailable",
                "redis": redis_short,
                "rules_version": app[RULES].version,
                "pid": os.getpid(),
            },
            status=code,
        )

    @staticmethod
    async def _probe_redis(redis: GuardedRedis | None) -> _Probe | None:
        if redis is None:
            return None
        # The guard bounds the ping (and skips it while the breaker is open); the outer bound
        # only backs that up.
        return await _probe(redis.ping, 2 * redis.guard.timeout_s)

    @staticmethod
    def _redis_entry(redis: GuardedRedis | None, probe: _Probe | None) -> dict[str, Any]:
        if redis is None or probe is None:
            return {"ok": True, "enabled": False}
        seen = redis.guard.health()
        ok = seen.ok and not probe.error
        entry: dict[str, Any] = {
            "ok": ok,
            "enabled": True,
            "since": _iso(seen.since),
            "circuit": seen.circuit.value,
            "latency_ms": probe.latency_ms,
        }
        if not ok:
            entry["error"] = seen.error or probe.error
        return entry


async def handle_metrics(request: web.Request) -> web.Response:
    """The app's Prometheus registry in text exposition format."""
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
