"""A background task that lives exactly as long as a block (an app resource's body)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any

__all__ = ["running"]


@contextlib.asynccontextmanager
async def running(job: Coroutine[Any, Any, None] | None, name: str) -> AsyncIterator[None]:
    """``job`` as a background task for the body's duration; cancelled and awaited after it.

    ``None`` runs nothing (a resource whose periodic pass is off, e.g. in a one-shot command).
    """
    if job is None:
        yield
        return
    task = asyncio.create_task(job, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
