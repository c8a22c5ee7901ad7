"""Running the server: one worker in this process, or N worker processes sharing the port.

SIGTERM (and Ctrl-C) stop accepting connections, let in-flight callbacks finish within
``[server].shutdown_timeout_s``, then close resources, which flushes the pending group commit.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import signal
import sys
from types import FrameType

import uvloop
from aiohttp import web

from bot.config import Config
from bot.log import server_log, setup_logging
from bot.web.app import create_app
from bot.web.limits import ReadLimits, run_app

__all__ = ["banner", "serve"]


def banner(config: Config) -> str:
    """What an operator needs after start-up: the callback URL and how to try it."""
    base = f"http://{config.server.host}:{config.server.port}"
    lines = [
        f"wecom-sentinel listening on {base} ({config.server.workers} worker(s), config {config.source})",
        f"  WeCom callback URL (接收消息 URL): {base}{config.server.callback_path}",
        f"  health: {base}/healthz   metrics: {base}/metrics",
        f"  storage: {_redact(config.storage.database_url)}; "
        f"redis: {'configured' if config.storage.redis_url else 'none (in-process fallbacks)'}",
        "  try it:  .venv/bin/python run_bot.py simulate --text 你好"
        + (f" --url {base}{config.server.callback_path}" if config.server.port != 8080 else ""),
    ]
    return "\n".join(lines)


def _redact(url: str) -> str:
    # A database URL may carry a password: show scheme and location only.
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def _new_loop() -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


async def _freeze_heap(_app: web.Application) -> None:
    """Move everything allocated during start-up out of the cycle collector's sight.

    Imported modules, the rules (dictionaries, normalisation tables) and the app are hundreds of
    thousands of long-lived objects; every full collection, which the allocations of ordinary
    requests trigger from time to time, would walk all of them again (~5 % of the CPU under load).
    Frozen objects are still freed by reference counting; only a frozen object that later dies in
    a reference cycle is never reclaimed, which bounds the cost to one copy of the start-up rule
    set after a reload (reloaded rules are allocated after the freeze and collected as usual).
    """
    gc.collect()
    gc.freeze()


def _run_worker(config: Config, reuse_port: bool) -> None:
    setup_logging(config.logging.level)
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    app = create_app(config)
    # Appended after the resources' cleanup_ctx, so it runs once they are all loaded.
    app.on_startup.append(_freeze_heap)
    run_app(
        app,
        limits=ReadLimits.of(config.server),
        host=config.server.host,
        port=config.server.port,
        reuse_port=reuse_port,
        shutdown_timeout=config.server.shutdown_timeout_s,
        access_log=None,  # per-request access lines cost throughput; metrics count requests instead
        loop=loop,
    )


def serve(config: Config) -> int:
    """Serve until SIGTERM/SIGINT; returns the process exit code."""
    print(banner(config), flush=True)
    if config.server.workers == 1:
        _run_worker(config, reuse_port=False)
        return 0
    return _supervise(config)


def _supervise(config: Config) -> int:
    # Each worker builds its own app and resources; they share only the port (SO_REUSEPORT), Redis
    # and the database, so any worker can take any callback.
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_run_worker, args=(config, True), name=f"sentinel-worker-{i}")
        for i in range(config.server.workers)
    ]
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.pid is not None and p.is_alive():
                os.kill(p.pid, signal.SIGTERM)

    def forward_hup(signum: int, _frame: FrameType | None) -> None:
        # SIGHUP means "reload the rules" to each worker; its default action would kill us.
        for p in procs:
            if p.pid is not None and p.is_alive():
                os.kill(p.pid, signal.SIGHUP)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, forward_hup)
    for p in procs:
        p.start()
    exit_code = 0
    while any(p.is_alive() for p in procs):
        for p in procs:
            p.join(timeout=0.5)
            if not p.is_alive() and not stopping:
                # A worker died on its own: stop the rest and let the service manager restart us.
                server_log.error(
                    "worker %s exited with %s; stopping all workers", p.name, p.exitcode
                )
                exit_code = 1
                stop(signal.SIGTERM, None)
    deadline = config.server.shutdown_timeout_s + 5
    for p in procs:
        p.join(timeout=deadline)
        if p.is_alive():
            p.kill()
            exit_code = 1
    sys.stdout.flush()
    return exit_code
