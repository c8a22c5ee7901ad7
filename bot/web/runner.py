"""Running the server: one worker in this process, or N worker processes sharing the port under a
supervisor that replaces a worker that dies (``Supervisor``).

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
import time
from dataclasses import dataclass
from multiprocessing import connection as mp_connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

import uvloop
from aiohttp import web

from bot.config import Config
from bot.log import server_log, setup_logging
from bot.web.app import create_app
from bot.web.keys import CONFIG
from bot.web.limits import ReadLimits, run_app
from bot.web.metrics import shared_metrics_dir, worker_exited

__all__ = ["Supervisor", "banner", "serve"]

#: A worker that exits within this many seconds of its start failed to start, rather than died.
_QUICK_EXIT_S = 10.0
#: Seconds before a worker is restarted, by its quick exits in a row (0: it had run a while). As
#: many quick exits in a row as there are entries mean it cannot start: the supervisor gives up.
_RESTART_DELAYS_S = (0.0, 1.0, 2.0, 5.0)


def banner(config: Config) -> str:
    """What an operator needs after start-up: the callback URL and how to try it."""
    base = f"http://{config.server.host}:{config.server.port}"
    lines = [
        f"wecom-sentinel starting on {base} ({config.server.workers} worker(s), config {config.source})",
        f"  WeCom callback URL (接收消息 URL): {base}{config.server.callback_path}",
        f"  health: {base}/healthz   metrics: {base}/metrics",
        f"  storage: {_redact(config.storage.database_url)}; "
        f"redis: {'configured' if config.storage.redis_url else 'none (in-process fallbacks)'}",
        "  try it:  .venv/bin/python run_bot.py simulate --text 你好"
        + (f" --url {base}{config.server.callback_path}" if config.server.port != 8080 else ""),
    ]
    if not config.wecom.secret:
        if not config.sandbox.enabled:
            shown = "not served ([sandbox].enabled = false)"
        elif config.sandbox.allow_remote:
            shown = f"{base}/sandbox/"
        else:
            shown = f"{base}/sandbox/ (from this machine only)"
        lines.append(
            f"  no [wecom].secret: calls to WeCom are recorded, not sent; sandbox: {shown}"
        )
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


async def _announce(app: web.Application) -> None:
    """Say that this worker's resources are up; it takes connections right after."""
    config = app[CONFIG]
    server_log.info(
        "ready: answering on http://%s:%s (pid %d)",
        config.server.host,
        config.server.port,
        os.getpid(),
    )


def _run_worker(config: Config, reuse_port: bool) -> None:
    setup_logging(config.logging.level)
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    app = create_app(config)
    # Appended after the resources' cleanup_ctx, so they run once they are all loaded.
    app.on_startup.append(_freeze_heap)
    app.on_startup.append(_announce)
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
    with shared_metrics_dir(config.server.workers) as metrics_dir:
        if config.server.workers == 1:
            _run_worker(config, reuse_port=False)
            return 0
        return Supervisor(config, metrics_dir).run()


@dataclass(slots=True)
class _Slot:
    """One of the N worker places: the process in it, and how its restarts are going."""

    name: str
    process: BaseProcess | None = None
    started_at: float = 0.0
    #: Exits in a row that came within ``_QUICK_EXIT_S`` of the start.
    quick_exits: int = 0
    #: When to start the next process (monotonic), while the place is empty.
    restart_at: float | None = None


class Supervisor:
    """N worker processes sharing the port; a worker that dies is logged and replaced.

    Each worker builds its own app and resources; they share only the port (SO_REUSEPORT), Redis,
    the database and the metrics folder, so any worker can take any callback and the survivors
    take every new connection while a dead worker's place is refilled. A worker that keeps exiting
    right after its start (``len(_RESTART_DELAYS_S)`` times in a row, each within
    ``_QUICK_EXIT_S``) cannot start at all: then every worker is stopped and the exit code is 1,
    for the service manager to see. SIGTERM and SIGINT stop the workers; SIGHUP is forwarded.
    """

    def __init__(self, config: Config, metrics_dir: Path | None) -> None:
        self._config = config
        self._metrics_dir = metrics_dir
        self._ctx = multiprocessing.get_context("spawn")
        self._slots = [_Slot(f"sentinel-worker-{i}") for i in range(config.server.workers)]
        self._stopping = False
        self._exit_code = 0

    def run(self) -> int:
        """Start the workers and keep them running until a stop signal; the exit code."""
        setup_logging(self._config.logging.level)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._forward_hup)
        for slot in self._slots:
            self._start(slot)
        while not self._stopping:
            self._wait_and_restart()
        self._reap()
        sys.stdout.flush()
        return self._exit_code

    def _alive(self) -> list[BaseProcess]:
        return [s.process for s in self._slots if s.process is not None and s.process.is_alive()]

    def _stop(self, _signum: int, _frame: FrameType | None) -> None:
        self._stopping = True
        for process in self._alive():
            if process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)

    def _forward_hup(self, _signum: int, _frame: FrameType | None) -> None:
        # SIGHUP means "reload the rules" to each worker; its default action would kill us.
        for process in self._alive():
            if process.pid is not None:
                os.kill(process.pid, signal.SIGHUP)

    def _start(self, slot: _Slot) -> None:
        process = self._ctx.Process(target=_run_worker, args=(self._config, True), name=slot.name)
        process.start()
        slot.process, slot.started_at, slot.restart_at = process, time.monotonic(), None

    def _wait_and_restart(self) -> None:
        """Wait for a worker to exit or a restart to come due (at most 0.5 s), then act on it."""
        now = time.monotonic()
        due = [s.restart_at for s in self._slots if s.restart_at is not None]
        timeout = max(0.0, min([now + 0.5, *due]) - now)
        running = [s.process.sentinel for s in self._slots if s.process is not None]
        mp_connection.wait(running, timeout=timeout)
        for slot in self._slots:
            if self._stopping:
                return
            process = slot.process
            if process is not None and process.exitcode is not None:
                self._exited(slot, process)
            if slot.restart_at is not None and time.monotonic() >= slot.restart_at:
                self._start(slot)
                server_log.warning(
                    "worker %s restarted as pid %s", slot.name, slot.process and slot.process.pid
                )

    def _exited(self, slot: _Slot, process: BaseProcess) -> None:
        """Log a worker's unexpected exit and schedule its replacement."""
        process.join()
        slot.process = None
        if process.pid is not None:
            worker_exited(self._metrics_dir, process.pid)
        lived = time.monotonic() - slot.started_at
        slot.quick_exits = slot.quick_exits + 1 if lived < _QUICK_EXIT_S else 0
        how = _exit_reason(process.exitcode)
        if slot.quick_exits >= len(_RESTART_DELAYS_S):
            server_log.error(
                "worker %s (pid %s) %s %d times in a row within %.0f s of starting; "
                "stopping all workers",
                slot.name,
                process.pid,
                how,
                slot.quick_exits,
                _QUICK_EXIT_S,
            )
            self._exit_code = 1
            self._stop(signal.SIGTERM, None)
            return
        delay = _RESTART_DELAYS_S[slot.quick_exits]
        server_log.error(
            "worker %s (pid %s) %s after %.1f s; restarting it%s",
            slot.name,
            process.pid,
            how,
            lived,
            f" in {delay:.0f} s" if delay else "",
        )
        slot.restart_at = time.monotonic() + delay

    def _reap(self) -> None:
        """After a stop: wait for every worker to drain and exit; kill the ones that overstay."""
        deadline = time.monotonic() + self._config.server.shutdown_timeout_s + 5
        for slot in self._slots:
            process = slot.process
            if process is None:
                continue
            process.join(timeout=max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                server_log.error(
                    "worker %s (pid %s) did not stop; killing it", slot.name, process.pid
                )
                process.kill()
                process.join()
                self._exit_code = 1
            if process.pid is not None:
                worker_exited(self._metrics_dir, process.pid)


def _exit_reason(exitcode: int | None) -> str:
    """``exited with 3`` or ``was killed by SIGKILL``, for the log."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with {exitcode}"
