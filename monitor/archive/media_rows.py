"""The ``media_file`` rows: media announced by archived messages, their downloads, their display.

The write functions are units for the group-commit writer (``writer.run(lambda conn: ...)``);
the reads run on any connection. A row's life (:class:`MediaStatus`)::

    pending ──claim──► stored                        (bytes under sha256 in the media store)
       ▲  │        ├─► too_large                     (final)
       │  │        ├─► failed                        (final: 10005, 10010, attempts used up)
       │  │        └─► md5_mismatch ──claim──► ...   (retried while attempts < max_attempts)
       └──┘ release: a transient error gives the attempt back

:func:`claim_media` takes rows to download by raising ``attempts`` with a compare-and-set
(``WHERE attempts = <the value read>``): two claims that read the same row cannot both win. A row
stays claimable while downloading, so a later pass (of another worker) may fetch it again; that
is harmless: the store is content-addressed and :func:`mark_stored` is idempotent.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, case, select, update

from monitor.archive.media_store import INLINE_IMAGE_TYPES
from monitor.archive.msgaudit_models import MediaRecord, MediaStatus
from monitor.archive.upsert import insert_ignore
from wecom_sdk.messages.msgaudit_parts import MediaRef

__all__ = [
    "MEDIA",
    "MediaJob",
    "MediaView",
    "claim_media",
    "fileid_hash",
    "mark_failed",
    "mark_stored",
    "media_by_sha256",
    "media_of_messages",
    "pending_media",
    "record_media",
    "release_media",
    "size_label",
]

MEDIA: Table = MediaRecord.__table__

_RETRYABLE = (MediaStatus.PENDING, MediaStatus.MD5_MISMATCH)
_ERROR_MAX = 500  # characters of an error kept on the row

KIND_LABELS = {
    "image": "图片",
    "voice": "语音",
    "video": "视频",
    "file": "文件",
    "emotion": "表情",
    "meeting_voice_call": "会议录音",
    "voip_doc_share": "共享文件",
}


def fileid_hash(sdkfileid: str) -> str:
    """sha256 hex of an ``sdkfileid`` (the row's unique key with its message's dedupe key)."""
    return hashlib.sha256(sdkfileid.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class MediaJob:
    """A row to download, as :func:`claim_media` hands it over."""

    id: int
    dedupe_key: str
    sdkfileid: str
    kind: str
    md5: str
    announced_size: int
    filename: str
    status: str
    attempts: int
    """Attempts including this one."""


@dataclass(frozen=True, slots=True)
class MediaView:
    """A media file as the review page shows it (no ``sdkfileid``: nothing to fetch with)."""

    id: int
    dedupe_key: str
    kind: str
    filename: str
    status: str
    sha256: str
    size: int
    announced_size: int
    mime: str

    @property
    def stored(self) -> bool:
        return self.status == MediaStatus.STORED

    @property
    def inline_image(self) -> bool:
        """Stored, and of a type a browser may show inline (see ``INLINE_IMAGE_TYPES``)."""
        return self.stored and self.mime in INLINE_IMAGE_TYPES

    @property
    def kind_label(self) -> str:
        """图片, 语音, 视频, 文件, 表情 (the kind itself when unknown)."""
        return KIND_LABELS.get(self.kind, self.kind or "文件")

    @property
    def size_label(self) -> str:
        """The stored size, else the announced one, in B/KB/MB ("" when unknown)."""
        size = self.size or self.announced_size
        return size_label(size) if size else ""

    @property
    def state_label(self) -> str:
        """Why it is not shown, in Chinese ("" once stored)."""
        if self.status == MediaStatus.PENDING:
            return "媒体文件下载中"
        if self.status == MediaStatus.TOO_LARGE:
            return "文件过大，未下载"
        if self.status == MediaStatus.MD5_MISMATCH:
            return "文件校验失败（内容与消息不符），未保存"
        if self.status == MediaStatus.FAILED:
            return "下载失败（文件已过期或无效）"
        return ""


def size_label(size: int) -> str:
    """``532 B``, ``12.5 KB``, ``3.2 MB``, ``1.1 GB``."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


def record_media(conn: Connection, refs: Sequence[MediaRef], dedupe_key: str, now: datetime) -> int:
    """Add a pending row per media file of the message ``dedupe_key``; returns rows added.

    Idempotent: a file already recorded for the message (same ``sdkfileid``) is skipped.
    """
    if not refs:
        return 0
    rows = [
        {
            "dedupe_key": dedupe_key,
            "fileid_hash": fileid_hash(ref.sdkfileid),
            "sdkfileid": ref.sdkfileid,
            "kind": ref.kind,
            "md5": ref.md5sum.lower()[:32],
            "announced_size": max(0, ref.size),
            "filename": ref.filename,
            "status": MediaStatus.PENDING,
            "sha256": "",
            "size": 0,
            "mime": "",
            "attempts": 0,
            "error": "",
            "created_at": now,
            "stored_at": None,
        }
        for ref in refs
    ]
    statement = (
        insert_ignore(conn.dialect, MEDIA, ["dedupe_key", "fileid_hash"])
        .values(rows)
        .returning(MEDIA.c.id)
    )
    return len(conn.execute(statement).all())


def _retryable(max_attempts: int) -> Any:
    return MEDIA.c.status.in_(_RETRYABLE) & (MEDIA.c.attempts < max_attempts)


def pending_media(conn: Connection, limit: int, max_attempts: int) -> list[MediaJob]:
    """Rows still to download (pending, or md5_mismatch with attempts left), oldest first."""
    query = select(MEDIA).where(_retryable(max_attempts)).order_by(MEDIA.c.id).limit(limit)
    return [_job(row) for row in conn.execute(query)]


def claim_media(
    conn: Connection, *, limit: int, max_attempts: int, after_id: int = 0
) -> list[MediaJob]:
    """Claim up to ``limit`` rows to download (id above ``after_id``, oldest first).

    Each claim raises ``attempts`` by one if it is still the value read (see the module
    docstring). A pending row whose attempts are used up (claims that never finished: a crash
    mid-download) is marked failed here.
    """
    conn.execute(
        update(MEDIA)
        .where(MEDIA.c.status == MediaStatus.PENDING, MEDIA.c.attempts >= max_attempts)
        .values(status=MediaStatus.FAILED, error="attempts used up")
    )
    candidates = conn.execute(
        select(MEDIA)
        .where(_retryable(max_attempts), MEDIA.c.id > after_id)
        .order_by(MEDIA.c.id)
        .limit(limit)
    ).all()
    claimed = []
    for row in candidates:
        won = conn.execute(
            update(MEDIA)
            .where(
                MEDIA.c.id == row.id,
                MEDIA.c.attempts == row.attempts,
                MEDIA.c.status.in_(_RETRYABLE),
            )
            .values(attempts=row.attempts + 1)
        ).rowcount
        if won:
            claimed.append(_job(row, attempts=row.attempts + 1))
    return claimed


def mark_stored(
    conn: Connection, media_id: int, *, sha256: str, size: int, mime: str, now: datetime
) -> None:
    """The row's bytes are stored under ``sha256`` (idempotent; a final failure is kept)."""
    conn.execute(
        update(MEDIA)
        .where(MEDIA.c.id == media_id, MEDIA.c.status.in_((*_RETRYABLE, MediaStatus.STORED)))
        .values(
            status=MediaStatus.STORED, sha256=sha256, size=size, mime=mime, error="", stored_at=now
        )
    )


def mark_failed(conn: Connection, media_id: int, *, status: str, error: str, size: int = 0) -> None:
    """The download ended as ``status`` (too_large, md5_mismatch, failed); ``size``: what was
    seen (the announced or the running size of a too large file; the size that failed md5).
    A stored row is left alone (another worker stored the same file)."""
    if status not in (MediaStatus.TOO_LARGE, MediaStatus.MD5_MISMATCH, MediaStatus.FAILED):
        raise ValueError(f"not a failure status: {status!r}")
    conn.execute(
        update(MEDIA)
        .where(MEDIA.c.id == media_id, MEDIA.c.status != MediaStatus.STORED)
        .values(status=status, error=error[:_ERROR_MAX], size=size)
    )


def release_media(conn: Connection, media_id: int, *, error: str, give_back: bool = True) -> None:
    """The download failed but may be tried again: note why, and (``give_back``: a transient
    failure, not the file's fault) return the claim's attempt. The status stays as it was."""
    values: dict[str, Any] = {"error": error[:_ERROR_MAX]}
    if give_back:
        values["attempts"] = case((MEDIA.c.attempts > 0, MEDIA.c.attempts - 1), else_=0)
    conn.execute(
        update(MEDIA).where(MEDIA.c.id == media_id, MEDIA.c.status.in_(_RETRYABLE)).values(values)
    )


def media_of_messages(conn: Connection, dedupe_keys: Iterable[str]) -> dict[str, list[MediaView]]:
    """The media of each message (by archive key), in the order they were recorded."""
    keys = sorted(set(dedupe_keys))
    if not keys:
        return {}
    out: dict[str, list[MediaView]] = defaultdict(list)
    for row in conn.execute(select(MEDIA).where(MEDIA.c.dedupe_key.in_(keys)).order_by(MEDIA.c.id)):
        out[row.dedupe_key].append(_view(row))
    return dict(out)


def media_by_sha256(conn: Connection, sha256: str) -> MediaView | None:
    """The first stored row holding the content ``sha256`` (its type and name), or None."""
    row = conn.execute(
        select(MEDIA)
        .where(MEDIA.c.sha256 == sha256, MEDIA.c.status == MediaStatus.STORED)
        .order_by(MEDIA.c.id)
        .limit(1)
    ).first()
    return None if row is None else _view(row)


def _job(row: Any, *, attempts: int | None = None) -> MediaJob:
    return MediaJob(
        id=row.id,
        dedupe_key=row.dedupe_key,
        sdkfileid=row.sdkfileid,
        kind=row.kind,
        md5=row.md5,
        announced_size=row.announced_size,
        filename=row.filename,
        status=row.status,
        attempts=row.attempts if attempts is None else attempts,
    )


def _view(row: Any) -> MediaView:
    return MediaView(
        id=row.id,
        dedupe_key=row.dedupe_key,
        kind=row.kind,
        filename=row.filename,
        status=row.status,
        sha256=row.sha256,
        size=row.size,
        announced_size=row.announced_size,
        mime=row.mime,
    )
