"""The kf puller: one pull at a time per kf account, across every worker.

``notify(open_kfid, token)`` (a ``kf_msg_or_event`` callback) returns at once; the pull runs in
a task. Per account and process there is at most one such task: a notice arriving while it runs
marks the account dirty and the task loops once more. Across processes the pull lock decides
(:mod:`bot.pull_lock`): a worker that finds it taken asks the holder to pull again, and stops once
the holder has taken the request; if the holder was killed mid-pull, it pulls itself when the
dead holder's lease lapses.

A pull, holding the lock:

1. claims the next fencing token in ``kf_cursor`` (with the stored cursor);
2. sends the actions left pending (a crash, a transient failure) with their original msgids;
3. pages: ``sync_msg`` (cursor, the newest token, limit 1000) -> :class:`bot.kf.page.PageWork`
   (archive every item, then decide + record actions + move the cursor, fenced, in one
   transaction) -> send the new actions; while ``has_more``;
4. loops while dirty; releases; pulls again if another worker asked meanwhile.

A periodic pass (``[kf].pull_interval_s``, first one at start-up) pulls every known account in
case a callback was missed, and finishes the work a killed process left.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Callable

from redis.exceptions import RedisError

from bot.config import Config
from bot.inbound.pipeline import Pipeline
from bot.kf.log import kf_log
from bot.kf.page import PageWork
from bot.kf.sender import KfSender
from bot.kf.store import claim_fence, known_accounts
from bot.kf.welcome import Welcomer
from bot.pull_lock import FencedOut, Lease, PullLocks
from bot.web.metrics import BotMetrics
from monitor.archive import Archive, GroupCommitWriter
from monitor.errors import StorageError
from rules.engine import RuleEngine
from wecom_sdk.client import WeComClient
from wecom_sdk.client.models import SyncResult
from wecom_sdk.errors import ApiError, WeComError

__all__ = ["TOKEN_ERRCODES", "KfPuller"]

#: sync_msg errcodes meaning "this pull token is not (or no longer) valid": pull without it.
TOKEN_ERRCODES = frozenset({95007})


#: Margin after a lapsed lease before pulling in place of its (dead) holder.
_RECHECK_S = 0.5
#: How often a worker waiting on another's pull checks that its request was taken.
_POLL_S = 0.5


class _LeaseLost(Exception):
    pass


class _Round(enum.Enum):
    DONE = "done"
    AGAIN = "again"  # a notice came in meanwhile: pull once more
    BUSY = "busy"  # another worker holds the lock


class KfPuller:
    """Pulls kf accounts on notice and periodically (see the module docstring)."""

    def __init__(
        self,
        *,
        client: WeComClient,
        pipeline: Pipeline,
        config: Config,
        writer: GroupCommitWriter,
        archive: Archive,
        rules: RuleEngine,
        locks: PullLocks,
        clock: Callable[[], float] = time.time,
        page_limit: int = 1000,
        metrics: BotMetrics | None = None,
    ) -> None:
        self._client = client
        self._writer = writer
        self._locks = locks
        self._clock = clock
        self._limit = page_limit
        self._interval = config.kf.pull_interval_s
        self._sender = KfSender(client, writer, archive, clock=clock, metrics=metrics)
        welcomer = Welcomer(client, writer, archive, config.kf, clock=clock)
        self._page = PageWork(client, pipeline, config, writer, rules, welcomer, clock, metrics)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()
        self._tokens: dict[str, str] = {}  # received here, not yet shared through the locks
        self._wake: dict[str, asyncio.Event] = {}  # a task waiting on another worker's pull

    def notify(self, open_kfid: str, token: str = "") -> None:
        """A callback said the account has news: pull soon. Never blocks, never raises."""
        if not open_kfid:
            return
        if token:
            self._tokens[open_kfid] = token
        self._start(open_kfid, periodic=False)

    async def idle(self) -> None:
        """Wait until no pull runs in this process."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def run_periodic(self) -> None:
        """Pull every known account now and then every ``pull_interval_s``; runs until cancelled."""
        while True:
            try:
                accounts = await self._writer.run(known_accounts)
            except StorageError as exc:
                kf_log.warning("kf periodic pull: cannot list accounts (%s)", exc)
                accounts = []
            for open_kfid in accounts:
                self._start(open_kfid, periodic=True)
            await asyncio.sleep(self._interval)

    async def close(self) -> None:
        """Stop every pull (safe at any point: the cursor only moves with a committed page)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _start(self, open_kfid: str, *, periodic: bool) -> None:
        running = self._tasks.get(open_kfid)
        if running is not None and not running.done():
            if not periodic:
                self._dirty.add(open_kfid)  # the running pull loops once more
                if (wake := self._wake.get(open_kfid)) is not None:
                    wake.set()  # or, waiting on another worker, asks it again
            return
        task = asyncio.create_task(self._run(open_kfid, periodic), name=f"sentinel-kf:{open_kfid}")
        self._tasks[open_kfid] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._tasks.get(open_kfid) is done:
                del self._tasks[open_kfid]

        task.add_done_callback(forget)

    async def _run(self, open_kfid: str, periodic: bool) -> None:
        try:
            while True:
                outcome = await self._round(open_kfid, periodic)
                periodic = False
                if outcome is _Round.AGAIN:
                    continue
                if outcome is _Round.DONE:
                    return
                if not await self._await_holder(open_kfid):
                    return
        except FencedOut:
            kf_log.info("kf %s: a newer puller took over; stopping", open_kfid)
        except _LeaseLost:
            kf_log.warning("kf %s: pull lock lost; stopping", open_kfid)
        except (WeComError, StorageError, RedisError) as exc:
            kf_log.warning(
                "kf %s: pull stopped (%s); the next notice or pass retries", open_kfid, exc
            )
        except Exception:  # a bug: keep the worker alive, the next pass retries
            kf_log.exception("kf %s: pull failed", open_kfid)

    async def _await_holder(self, open_kfid: str) -> bool:
        """Another worker holds the lock; whether to try another round ourselves.

        A live holder takes our request when it releases (then: done). One killed mid-pull
        never will: once its lease has run out, we pull. A new notice here meanwhile renews
        the request at once.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + await self._locks.lease_left(open_kfid) + _RECHECK_S
        wake = self._wake.setdefault(open_kfid, asyncio.Event())
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), max(min(_POLL_S, deadline - loop.time()), 0))
            wake.clear()
            if open_kfid in self._dirty:
                return True
            if not await self._locks.again_requested(open_kfid):
                return False  # a live holder took the request
            if loop.time() >= deadline:
                return True

    async def _round(self, open_kfid: str, periodic: bool) -> _Round:
        """One locked pull, unless another worker holds the lock."""
        await self._share_token(open_kfid)
        lease = await self._locks.acquire(open_kfid)
        if lease is None:
            if periodic:
                return _Round.DONE  # someone is pulling right now: that is what the pass wanted
            self._dirty.discard(open_kfid)  # the request covers this process's notices so far
            await self._locks.request_again(open_kfid)
            # The holder may have released just before the request: try once more, so the
            # request is seen either by the holder (after its release) or by us.
            lease = await self._locks.acquire(open_kfid)
            if lease is None:
                kf_log.info("kf %s: another worker is pulling; it will pull again", open_kfid)
                return _Round.BUSY
        try:
            await self._locks.take_again(open_kfid)  # this pull covers every earlier notice
            await self._pull_locked(open_kfid, lease)
        finally:
            await lease.release()
        again = await self._locks.take_again(open_kfid) or open_kfid in self._dirty
        return _Round.AGAIN if again else _Round.DONE

    async def _pull_locked(self, open_kfid: str, lease: Lease) -> None:
        fence, cursor = await self._writer.run(
            lambda conn: claim_fence(conn, open_kfid, self._clock())
        )
        await self._sender.flush(open_kfid)
        while True:
            self._dirty.discard(open_kfid)
            cursor = await self._drain(open_kfid, lease, fence, cursor)
            if open_kfid not in self._dirty:
                return

    async def _drain(self, open_kfid: str, lease: Lease, fence: int, cursor: str) -> str:
        """Pull pages until ``has_more`` is false; returns the last cursor."""
        pages = items = 0
        while True:
            if lease.lost:
                raise _LeaseLost(open_kfid)
            await self._share_token(open_kfid)
            page = await self._sync(open_kfid, cursor)
            next_cursor = page.next_cursor or cursor
            await self._page.process(open_kfid, fence, next_cursor, page.msg_list)
            await self._sender.flush(open_kfid)
            pages, items = pages + 1, items + len(page.msg_list)
            stuck = next_cursor == cursor and not page.msg_list
            cursor = next_cursor
            if not page.has_more or stuck:
                kf_log.info("kf %s: pulled %d item(s) in %d page(s)", open_kfid, items, pages)
                return cursor

    async def _sync(self, open_kfid: str, cursor: str) -> SyncResult:
        token = await self._locks.token(open_kfid)
        kf = self._client.kf
        try:
            return await kf.sync_msg(
                open_kfid, cursor=cursor or None, token=token or None, limit=self._limit
            )
        except ApiError as exc:
            if not token or exc.errcode not in TOKEN_ERRCODES:
                raise
            kf_log.info(
                "kf %s: pull token refused (%s); pulling without it", open_kfid, exc.errcode
            )
            await self._locks.drop_token(open_kfid, token)
            return await kf.sync_msg(open_kfid, cursor=cursor or None, limit=self._limit)

    async def _share_token(self, open_kfid: str) -> None:
        token = self._tokens.pop(open_kfid, "")
        if token:
            await self._locks.put_token(open_kfid, token)
