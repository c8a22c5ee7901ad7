"""Named loggers of the bot package, declared once, and the rate limit on rejection lines.

Formatting is lazy (``%s`` arguments). Chat text, tokens and AES keys are never logged above DEBUG.
A rejected request (bad input, a slow client) gets one WARNING line without a traceback, through
:class:`RejectLog`, so that a storm of bad requests costs a bounded number of lines; tracebacks are
for bugs of ours.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "RejectLog",
    "callback_log",
    "directory_log",
    "pipeline_log",
    "server_log",
    "setup_logging",
]

server_log = logging.getLogger("sentinel.server")
callback_log = logging.getLogger("sentinel.callback")
pipeline_log = logging.getLogger("sentinel.pipeline")
directory_log = logging.getLogger("sentinel.directory")


def setup_logging(level: str) -> None:
    """Configure the root handler once for CLI use (tests leave logging to pytest)."""
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s",
    )
    logging.getLogger("sentinel").setLevel(level)


@dataclass(slots=True)
class _Window:
    """One kind of rejection within its current window."""

    logger: logging.Logger
    started: float
    logged: int = 0
    suppressed: int = 0


class RejectLog:
    """One WARNING line per rejected request, at most ``burst`` lines per ``window_s`` per kind.

    Rejections of one kind (the same ``kind`` on the same logger) past the burst are counted
    instead, and one ``suppressed K similar rejections`` line follows when their window closes:
    at that moment when an event loop is running (a timer), else with the next rejection of the
    kind. Kinds come from our code (a status and a fixed reason), never from request data, so
    their number is small; windows that closed are dropped when there are many.

    Args:
        burst: Lines per kind and window.
        window_s: Length of a window, in seconds.
        clock: Monotonic time source.
    """

    __slots__ = ("_burst", "_clock", "_window_s", "_windows")

    #: Past this many kinds, windows that have closed are forgotten.
    MAX_KINDS = 256

    def __init__(
        self,
        *,
        burst: int = 10,
        window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or window_s <= 0:
            raise ValueError("burst must be >= 1 and window_s > 0")
        self._burst = burst
        self._window_s = window_s
        self._clock = clock
        self._windows: dict[tuple[str, str], _Window] = {}

    def rejected(self, logger: logging.Logger, kind: str, msg: str, *args: object) -> None:
        """Log ``msg % args`` at WARNING unless ``kind`` has used up its burst in this window."""
        now = self._clock()
        key = (logger.name, kind)
        window = self._windows.get(key)
        if window is None or now - window.started >= self._window_s:
            if window is not None:
                self._flush(key)
            elif len(self._windows) >= self.MAX_KINDS:
                self._forget_closed(now)
            window = self._windows[key] = _Window(logger, now)
        if window.logged < self._burst:
            window.logged += 1
            logger.warning(msg, *args)
            return
        window.suppressed += 1
        if window.suppressed == 1:
            self._flush_later(key, window.started + self._window_s - now)

    def _flush(self, key: tuple[str, str]) -> None:
        window = self._windows.get(key)
        if window is None or not window.suppressed:
            return
        window.logger.warning(
            "suppressed %d similar rejections in %.0f s: %s",
            window.suppressed,
            self._window_s,
            key[1],
        )
        window.suppressed = 0

    def _flush_later(self, key: tuple[str, str], delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: the next rejection of this kind flushes
            return
        loop.call_later(max(delay, 0.0), self._flush, key)

    def _forget_closed(self, now: float) -> None:
        for key, window in list(self._windows.items()):
            if now - window.started >= self._window_s:
                self._flush(key)
                del self._windows[key]
