"""Waiting in tests: poll a condition until a deadline, never sleep a fixed time and hope.

A loaded machine (two cores, other suites running) makes any fixed sleep either too short or a
waste; a poll returns as soon as the condition holds and fails naming what it waited for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["until", "until_async", "wait_until"]

_POLL_S = 0.01


async def until(condition: Callable[[], object], what: str, timeout_s: float = 10.0) -> None:
    """Return once ``condition()`` is truthy; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(_POLL_S)


async def until_async(
    condition: Callable[[], Awaitable[object]], what: str, timeout_s: float = 10.0
) -> None:
    """:func:`until` for a condition that must be awaited (a database or Redis read)."""
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(_POLL_S)


def wait_until(condition: Callable[[], object], what: str, timeout_s: float = 10.0) -> None:
    """:func:`until` for synchronous tests."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(_POLL_S)
