"""Downloads the media files of archived messages (``media_file`` rows) into the media store.

:meth:`MediaFetcher.fetch_pending` is one pass: a few downloads at once (``concurrency``), each
of a row claimed through the writer (:func:`monitor.archive.media_rows.claim_media`), until no
row is left. A download calls the archive SDK's ``GetMediaData`` (blocking: in a thread) chunk by
chunk into a :class:`~monitor.archive.media_store.MediaSink`, and ends as:

- **stored**: md5 matches the message's md5sum; the bytes are under their sha256, the row has
  sha256, size and type (sniffed from the first bytes, else from the file name);
- **too_large**: the announced size, or the bytes received so far, pass ``media_max_bytes``
  (nothing is downloaded past the chunk that crossed it; nothing is kept);
- **md5_mismatch**: nothing kept; tried again on later passes while attempts are left;
- **failed**: 10005 (bad sdkfileid) or 10010 (data expired): for good;
- **retry**: 10001/10003 (WeCom unavailable) or a local disk error: the attempt is given back
  and the row waits for a later pass. Two such failures in a row end the pass, and the next
  passes back off (``backoff_s``, doubling up to ``max_backoff_s``) until one goes through
  without them.

Several workers may run passes at once: a claim is a compare-and-set on ``attempts``, so two
claims of one snapshot cannot both win, and within a fetcher claims are serialised. A row stays
claimable while it downloads, though, so another worker's later pass may download it again;
that is harmless (content addressing: the same bytes land under the same name; marking stored
is idempotent), only wasted bandwidth. One line is logged per outcome; no file content or name.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from functools import partial

from bot.config import MsgauditConfig
from monitor.archive.media_rows import (
    MediaJob,
    claim_media,
    mark_failed,
    mark_stored,
    release_media,
)
from monitor.archive.media_store import MediaSink, MediaStore, sniff_mime
from monitor.archive.msgaudit_models import MediaStatus
from monitor.archive.writer import GroupCommitWriter
from wecom_sdk.errors import ArchiveError, ArchiveUnavailable
from wecom_sdk.msgaudit.source import ArchiveSource, MediaChunk

__all__ = ["FINAL_ERRCODES", "FetchReport", "MediaFetcher", "Outcome"]

# The owner of bot/msgaudit may move this into the package's log.py.
media_log = logging.getLogger("sentinel.msgaudit.media")

FINAL_ERRCODES = frozenset({10005, 10010})
"""GetMediaData codes that no retry can fix: bad sdkfileid, data expired."""

#: Transient failures in a row that end a pass (WeCom is down: the other rows would fail too).
_UNAVAILABLE_STREAK = 2


class Outcome(Enum):
    """How one download ended."""

    STORED = "stored"
    TOO_LARGE = "too_large"
    MD5_MISMATCH = "md5_mismatch"
    FAILED = "failed"
    RETRY = "retry"
    """Transient (WeCom unavailable, disk): the attempt was given back."""
    ERROR = "error"
    """Another failure: the attempt counts; tried again while attempts are left."""


@dataclass(frozen=True, slots=True)
class FetchReport:
    """What one pass did: downloads per outcome; ``backing_off``: the pass did not run."""

    outcomes: Counter[Outcome] = field(default_factory=Counter)
    backing_off: bool = False

    def __getitem__(self, outcome: Outcome) -> int:
        return self.outcomes[outcome]

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())


class _Stalled(Exception):
    """The source answered a chunk that moves nowhere (no data, not the last)."""

    def __str__(self) -> str:
        return "GetMediaData returned an empty chunk that is not the last"


@dataclass(slots=True)
class _Pass:
    cursor: int = 0
    streak: int = 0
    stop: bool = False
    outcomes: Counter[Outcome] = field(default_factory=Counter)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class MediaFetcher:
    """Downloads pending media (see the module docstring).

    Args:
        source: The archive SDK (blocking; called in threads).
        writer: Every row change goes through it.
        store: Where the bytes go.
        config: ``media_max_bytes`` and ``timeout_s`` (GetMediaData's timeout).
        clock: Now, aware UTC (row times, the back-off).
        concurrency: Downloads at once.
        max_attempts: Tries of one file (md5 mismatches and other non-transient failures).
        backoff_s: The first back-off after a pass that met WeCom unavailable; doubles per
            such pass, up to ``max_backoff_s``.
    """

    def __init__(
        self,
        source: ArchiveSource,
        writer: GroupCommitWriter,
        store: MediaStore,
        config: MsgauditConfig,
        clock: Callable[[], datetime] = _utcnow,
        *,
        concurrency: int = 2,
        max_attempts: int = 5,
        backoff_s: float = 30.0,
        max_backoff_s: float = 1800.0,
    ) -> None:
        if concurrency < 1 or max_attempts < 1:
            raise ValueError("concurrency and max_attempts must be at least 1")
        self._source = source
        self._writer = writer
        self._store = store
        self._max_bytes = config.media_max_bytes
        self._timeout_s = config.timeout_s
        self._clock = clock
        self._concurrency = concurrency
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._failing_passes = 0
        self._not_before: datetime | None = None
        self._one_pass = asyncio.Lock()

    async def fetch_pending(self) -> FetchReport:
        """Download what is pending (one pass; passes of this fetcher run one at a time)."""
        async with self._one_pass:
            if self._not_before is not None and self._clock() < self._not_before:
                return FetchReport(backing_off=True)
            state = _Pass()
            claims = asyncio.Lock()
            results = await asyncio.gather(
                *(self._work(state, claims) for _ in range(self._concurrency)),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            self._after_pass(state.outcomes[Outcome.RETRY] > 0)
            return FetchReport(state.outcomes)

    def _after_pass(self, unavailable: bool) -> None:
        if not unavailable:
            self._failing_passes = 0
            self._not_before = None
            return
        self._failing_passes += 1
        delay = min(self._backoff_s * 2 ** (self._failing_passes - 1), self._max_backoff_s)
        self._not_before = self._clock() + timedelta(seconds=delay)

    async def _work(self, state: _Pass, claims: asyncio.Lock) -> None:
        try:
            await self._claim_and_fetch(state, claims)
        except BaseException:
            state.stop = True  # the other downloads end with their current file
            raise

    async def _claim_and_fetch(self, state: _Pass, claims: asyncio.Lock) -> None:
        while True:
            async with claims:
                if state.stop:
                    return
                claim = partial(
                    claim_media, limit=1, max_attempts=self._max_attempts, after_id=state.cursor
                )
                jobs = await self._writer.run(claim)
                if not jobs:
                    return
                job = jobs[0]
                state.cursor = job.id
            outcome = await self.fetch(job)
            state.outcomes[outcome] += 1
            state.streak = state.streak + 1 if outcome is Outcome.RETRY else 0
            if state.streak >= _UNAVAILABLE_STREAK:
                state.stop = True

    async def fetch(self, job: MediaJob) -> Outcome:
        """Download one claimed row and record how it ended (one log line)."""
        if job.announced_size > self._max_bytes:
            return await self._too_large(job, job.announced_size, "announced")
        sink: MediaSink | None = None
        try:
            sink = await asyncio.to_thread(self._store.sink)
            return await self._download(job, sink)
        except (ArchiveError, OSError, _Stalled) as exc:
            return await self._failed(job, exc)
        finally:
            if sink is not None:
                sink.abort()  # nothing after a commit; else drops the partial file

    async def _failed(self, job: MediaJob, exc: Exception) -> Outcome:
        if isinstance(exc, ArchiveUnavailable):
            return await self._retry(job, str(exc))
        if isinstance(exc, OSError):  # the disk (full, gone): not the file's fault
            return await self._retry(job, f"media store: {type(exc).__name__}")
        if isinstance(exc, ArchiveError) and exc.errcode in FINAL_ERRCODES:
            await self._mark(job, MediaStatus.FAILED, str(exc))
            media_log.warning("media %d (%s) failed for good: %s", job.id, job.kind, exc)
            return Outcome.FAILED
        return await self._error(job, str(exc))

    async def _download(self, job: MediaJob, sink: MediaSink) -> Outcome:
        index = ""
        while True:
            chunk, kept = await asyncio.to_thread(self._step, sink, job.sdkfileid, index)
            if not kept:
                return await self._too_large(job, sink.size + len(chunk.data), "received")
            if chunk.is_finish:
                break
            if not chunk.data or not chunk.next_index:
                raise _Stalled
            index = chunk.next_index
        if job.md5 and sink.md5 != job.md5:
            error = f"md5 {sink.md5} of {sink.size} bytes, the message said {job.md5}"
            status = MediaStatus.MD5_MISMATCH
            await self._mark(job, status, error, size=sink.size)
            media_log.warning(
                "media %d (%s) md5 mismatch (attempt %d of %d)",
                job.id,
                job.kind,
                job.attempts,
                self._max_attempts,
            )
            return Outcome.MD5_MISMATCH
        stored = await asyncio.to_thread(sink.commit)
        mime = sniff_mime(sink.head, job.filename)
        now = self._clock()
        await self._writer.run(
            partial(
                mark_stored,
                media_id=job.id,
                sha256=stored.sha256,
                size=stored.size,
                mime=mime,
                now=now,
            )
        )
        media_log.info(
            "media %d (%s) stored: %d bytes, %s, %s",
            job.id,
            job.kind,
            stored.size,
            mime,
            "new content" if stored.created else "content already stored",
        )
        return Outcome.STORED

    def _step(self, sink: MediaSink, sdkfileid: str, index: str) -> tuple[MediaChunk, bool]:
        """One GetMediaData call, its bytes written unless they would pass the size limit."""
        chunk = self._source.get_media_data(sdkfileid, index, self._timeout_s)
        if sink.size + len(chunk.data) > self._max_bytes:
            return chunk, False
        sink.write(chunk.data)
        return chunk, True

    async def _too_large(self, job: MediaJob, size: int, how: str) -> Outcome:
        await self._mark(
            job, MediaStatus.TOO_LARGE, f"{how} {size} bytes > {self._max_bytes}", size=size
        )
        media_log.info(
            "media %d (%s) too large: %s %d bytes > %d",
            job.id,
            job.kind,
            how,
            size,
            self._max_bytes,
        )
        return Outcome.TOO_LARGE

    async def _retry(self, job: MediaJob, error: str) -> Outcome:
        await self._writer.run(partial(release_media, media_id=job.id, error=error))
        media_log.warning(
            "media %d (%s) not downloaded, retried later: %s", job.id, job.kind, error
        )
        return Outcome.RETRY

    async def _error(self, job: MediaJob, error: str) -> Outcome:
        if job.attempts >= self._max_attempts:
            await self._mark(job, MediaStatus.FAILED, f"attempts used up; last: {error}")
            media_log.warning(
                "media %d (%s) failed after %d attempts", job.id, job.kind, job.attempts
            )
            return Outcome.FAILED
        await self._writer.run(
            partial(release_media, media_id=job.id, error=error, give_back=False)
        )
        media_log.warning(
            "media %d (%s) attempt %d of %d failed: %s",
            job.id,
            job.kind,
            job.attempts,
            self._max_attempts,
            error,
        )
        return Outcome.ERROR

    async def _mark(self, job: MediaJob, status: str, error: str, *, size: int = 0) -> None:
        await self._writer.run(
            partial(mark_failed, media_id=job.id, status=status, error=error, size=size)
        )
