"""The weekly review sample (抽检) as an app resource: ``monitor.review.sampling.Sampler``.

Runs in every worker when ``[review] sample_rate`` is above 0 (and the app runs its periodic
jobs): each pass samples the last complete ISO week, and the cases' deterministic ids with
insert-if-absent make concurrent workers and reruns add nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from aiohttp import web

from bot.background import running
from bot.web.keys import CLOCK, CONFIG, PERIODIC, WRITER
from monitor.review.sampling import Sampler

__all__ = ["sampling_ctx"]


async def sampling_ctx(app: web.Application) -> AsyncIterator[None]:
    """The sampling loop for the app's lifetime (nothing when the rate is 0)."""
    rate = app[CONFIG].review.sample_rate
    if rate <= 0 or not app.get(PERIODIC, True):
        yield
        return
    clock = app[CLOCK]
    sampler = Sampler(app[WRITER], rate, clock=lambda: datetime.fromtimestamp(clock(), UTC))
    async with running(sampler.run(), "sentinel-review-sampling"):
        yield
