"""The archive puller: one pull at a time across every worker, cursor moved only after storage.

``notify()`` (a ``msgaudit_notify`` callback) returns at once; the pull runs in a task. A notice
arriving while it runs makes it loop once more; a worker that finds the lock taken asks the holder
to pull again (:mod:`bot.pull_lock`), and a holder killed mid-pull is replaced by the next
periodic pass once its lease lapses.

A pull, holding the lock:

1. claims the next fencing token in ``msgaudit_cursor`` (with the stored ``seq`` and key
   generation); when the key generation moved (``msgaudit keys reload``), reloads the private
   keys and retries the quarantine;
2. pages: ``GetChatData(seq, limit)`` in a thread (retried with backoff on 10001/10003) ->
   :mod:`bot.msgaudit.page` (open, archive every record, then commit quarantine, flags and the
   cursor, fenced, in one transaction); until a page comes back shorter than ``limit``. An empty
   page commits nothing: the cursor never moves back;
3. downloads the page's media, updates the lag metric and, past ``lag_alert_hours``, tells the
   operators (:mod:`bot.msgaudit.lag`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from redis.exceptions import RedisError
from sqlalchemy import Connection

from bot.config import Config
from bot.inbound.pipeline import Pipeline
from bot.msgaudit.log import msgaudit_log
from bot.msgaudit.opening import Opened, open_entries
from bot.msgaudit.page import Names, PageOutcome, archive_records, commit
from bot.msgaudit.store import (
    CursorState,
    claim_fence,
    mark_caught_up,
    quarantine_count,
    quarantined,
    release_quarantined,
    retry_failed,
)
from bot.pull_lock import FencedOut, Lease, PullLocks
from bot.web.metrics import BotMetrics
from monitor.archive import GroupCommitWriter
from monitor.errors import StorageError
from wecom_sdk.errors import ArchiveUnavailable, WeComError
from wecom_sdk.msgaudit import ArchiveSource, ChatDataEntry
from wecom_sdk.msgaudit.keyring import KeyRing

__all__ = ["STREAM", "MsgauditPuller", "PullReport"]

STREAM = "default"
"""The lock key of the archive stream (one per deployment)."""

#: Attempts of one GetChatData call on 10001/10003 before the round gives up (the next notice or
#: pass retries); the waits double from ``backoff_s``.
_ATTEMPTS = 5


class _LeaseLost(Exception):
    pass


def _settle(released: list[int], outcome: PageOutcome, now: float, conn: Connection) -> None:
    """A quarantine retry's outcome: released records and failed attempts, one transaction."""
    release_quarantined(conn, released, now, outcome.flags, outcome.media)
    retry_failed(conn, outcome.quarantined, now)


@dataclass(slots=True)
class PullReport:
    """What one pull (until caught up) did."""

    pages: int = 0
    entries: int = 0
    archived: int = 0
    repeats: int = 0
    quarantined: int = 0
    released: int = 0
    seq_from: int = 0
    seq_to: int = 0
    busy: bool = False


class MsgauditPuller:
    """Pulls the conversation archive on notice and periodically (see the module docstring)."""

    def __init__(
        self,
        *,
        source: ArchiveSource,
        load_keys: Callable[[], KeyRing],
        pipeline: Pipeline,
        config: Config,
        writer: GroupCommitWriter,
        locks: PullLocks,
        names: Names | None = None,
        after_round: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
        metrics: BotMetrics | None = None,
        backoff_s: float = 1.0,
    ) -> None:
        self._source = source
        self._load_keys = load_keys
        self._keys: KeyRing | None = None
        self._keys_generation = -1
        self._pipeline = pipeline
        self._config = config
        self._settings = config.msgaudit
        self._writer = writer
        self._locks = locks
        self._names = names
        self._after_round = after_round
        self._clock = clock
        self._metrics = metrics
        #: First wait after a 10001/10003 answer; doubled per attempt (tests shorten it).
        self.backoff_s = backoff_s
        self._task: asyncio.Task[None] | None = None
        self._dirty = False

    @property
    def source(self) -> ArchiveSource:
        """The archive source pulled from."""
        return self._source

    # -- entry points -------------------------------------------------------------------------

    def notify(self) -> None:
        """WeCom said there are new records: pull soon. Never blocks, never raises."""
        if self._task is not None and not self._task.done():
            self._dirty = True
            return
        self._task = asyncio.create_task(self._run(), name="sentinel-msgaudit")

    async def idle(self) -> None:
        """Wait until no pull runs in this process."""
        while self._task is not None and not self._task.done():
            await asyncio.gather(self._task, return_exceptions=True)

    async def run_periodic(self) -> None:
        """Pull now and then every ``poll_interval_s``; runs until cancelled."""
        while True:
            self.notify()
            await asyncio.sleep(self._settings.poll_interval_s)

    async def close(self) -> None:
        """Stop the pull (safe at any point: the cursor only moves with a committed page)."""
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def pull_once(self, *, wait_s: float = 30.0) -> PullReport:
        """Pull until caught up (the CLI's ``msgaudit pull --once``).

        When another puller holds the lock, waits for it up to ``wait_s`` (the lock's lease);
        ``busy`` in the report when it never came free.

        Raises:
            WeComError, StorageError, FencedOut: the pull stopped (nothing half-committed).
        """
        return await self._locked(self._pull_locked, wait_s)

    async def retry_quarantine(self, *, wait_s: float = 30.0) -> PullReport:
        """Open the quarantined records again with freshly loaded keys; archive those that open.

        Raises:
            WeComError: the keys cannot be loaded (a missing or unreadable key file).
        """

        async def retry(_lease: Lease) -> PullReport:
            self._keys = self._load_keys()
            return await self._retry_quarantine(self._keys)

        return await self._locked(retry, wait_s)

    async def _locked(
        self, work: Callable[[Lease], Awaitable[PullReport]], wait_s: float
    ) -> PullReport:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while (lease := await self._locks.acquire(STREAM)) is None:
            if loop.time() >= deadline:
                return PullReport(busy=True)
            await asyncio.sleep(0.2)
        try:
            return await work(lease)
        finally:
            await lease.release()

    # -- the pull -----------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while True:
                self._dirty = False
                lease = await self._locks.acquire(STREAM)
                if lease is None:
                    await self._locks.request_again(STREAM)
                    msgaudit_log.info("msgaudit: another worker is pulling; it will pull again")
                    return
                try:
                    await self._locks.take_again(STREAM)
                    await self._pull_locked(lease)
                finally:
                    await lease.release()
                if not (await self._locks.take_again(STREAM) or self._dirty):
                    return
        except FencedOut:
            msgaudit_log.info("msgaudit: a newer puller took over; stopping")
        except _LeaseLost:
            msgaudit_log.warning("msgaudit: pull lock lost; stopping")
        except (WeComError, StorageError, RedisError) as exc:
            msgaudit_log.warning(
                "msgaudit: pull stopped (%s); the next notice or pass retries", exc
            )
        except Exception:  # a bug: keep the worker alive, the next pass retries
            msgaudit_log.exception("msgaudit: pull failed")

    async def _pull_locked(self, lease: Lease) -> PullReport:
        state = await self._writer.run(lambda conn: claim_fence(conn, self._clock()))
        report = PullReport(seq_from=state.seq, seq_to=state.seq)
        keys = self._current_keys(state)
        if keys is None:
            keys = self._reload(state)
            released = await self._retry_quarantine(keys)
            report.released = released.released
        seq = state.seq
        limit = self._settings.page_limit
        try:
            while True:
                if lease.lost:
                    raise _LeaseLost
                entries = await self._get_page(seq, limit)
                if not entries:  # nothing new: the cursor stays where it is
                    await self._writer.run(
                        partial(mark_caught_up, fence=state.fence, now=self._clock())
                    )
                    break
                caught_up = len(entries) < limit
                seq = await self._page(state, entries, keys, caught_up, report)
                if caught_up:
                    break
        finally:
            report.seq_to = seq
            if report.pages:
                msgaudit_log.info(
                    "msgaudit: %d record(s) in %d page(s), seq %d -> %d (%d quarantined)",
                    report.entries,
                    report.pages,
                    report.seq_from,
                    seq,
                    report.quarantined,
                )
            await self._round_done()
        return report

    async def _page(
        self,
        state: CursorState,
        entries: list[ChatDataEntry],
        keys: KeyRing,
        caught_up: bool,
        report: PullReport,
    ) -> int:
        _opened, outcome = await self._open_and_archive(entries, keys)
        top = max(e.seq for e in entries)
        await commit(
            self._writer,
            fence=state.fence,
            entries_seq=top,
            outcome=outcome,
            caught_up=caught_up,
            clock=self._clock,
        )
        report.pages += 1
        report.entries += len(entries)
        report.archived += outcome.archived
        report.repeats += outcome.repeats
        report.quarantined += len(outcome.quarantined)
        self._count("archived", outcome.archived)
        self._count("repeat", outcome.repeats)
        self._count("quarantined", len(outcome.quarantined))
        for failure in outcome.quarantined:
            msgaudit_log.warning(
                "msgaudit: seq %d (msgid %s, publickey_ver %d) quarantined: %s",
                failure.entry.seq,
                failure.entry.msgid[:64],
                failure.entry.publickey_ver,
                failure.reason,
            )
        return top

    async def _get_page(self, seq: int, limit: int) -> list[ChatDataEntry]:
        timeout = self._settings.timeout_s
        delay = self.backoff_s
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return await asyncio.to_thread(self._source.get_chat_data, seq, limit, timeout)
            except ArchiveUnavailable as exc:
                if attempt == _ATTEMPTS:
                    raise
                msgaudit_log.warning(
                    "msgaudit: GetChatData failed (%s); retry %d in %.1f s", exc, attempt, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")

    async def _open_and_archive(
        self, entries: list[ChatDataEntry], keys: KeyRing
    ) -> tuple[list[Opened], PageOutcome]:
        """Open the entries (one thread hop), then archive what opened through the pipeline."""
        opened = await asyncio.to_thread(open_entries, entries, keys, self._source)
        outcome = await archive_records(
            opened,
            pipeline=self._pipeline,
            config=self._config,
            names=self._names,
            now=self._clock(),
        )
        return opened, outcome

    # -- keys and quarantine --------------------------------------------------------------------

    def _current_keys(self, state: CursorState) -> KeyRing | None:
        if self._keys is not None and self._keys_generation == state.keys_generation:
            return self._keys
        return None

    def _reload(self, state: CursorState) -> KeyRing:
        try:
            keys = self._load_keys()
        except WeComError as exc:
            if self._keys is None:
                raise
            msgaudit_log.warning("msgaudit: keys reload failed (%s); keeping the old keys", exc)
            keys = self._keys
        self._keys, self._keys_generation = keys, state.keys_generation
        msgaudit_log.info("msgaudit: private keys for publickey_ver %s", list(keys.versions))
        return keys

    async def _retry_quarantine(self, keys: KeyRing) -> PullReport:
        report = PullReport()
        after = 0
        while True:
            rows = await self._writer.run(partial(quarantined, after_seq=after))
            if not rows:
                break
            after = rows[-1].entry.seq
            opened, outcome = await self._open_and_archive([row.entry for row in rows], keys)
            released = [o.entry.seq for o in opened if o.record is not None]
            await self._writer.run(partial(_settle, released, outcome, self._clock()))
            report.released += len(released)
            report.quarantined += len(outcome.quarantined)
            self._count("released", len(released))
        if report.released:
            msgaudit_log.info(
                "msgaudit: %d quarantined record(s) released, %d still quarantined",
                report.released,
                report.quarantined,
            )
        return report

    # -- bookkeeping ----------------------------------------------------------------------------

    def _count(self, outcome: str, n: int) -> None:
        if self._metrics is not None and n:
            self._metrics.msgaudit_records.labels(outcome).inc(n)

    async def _round_done(self) -> None:
        if self._metrics is not None:
            with contextlib.suppress(StorageError):
                waiting = await self._writer.run(quarantine_count)
                self._metrics.msgaudit_quarantine.set(waiting)
        if self._after_round is not None:
            try:
                await self._after_round()
            except (WeComError, StorageError) as exc:
                msgaudit_log.warning("msgaudit: after-pull step failed (%s)", exc)
