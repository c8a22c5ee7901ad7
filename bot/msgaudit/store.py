"""The archive puller's reads and writes, as units for the group-commit writer (``writer.run(fn)``).

:func:`commit_page` is the heart: once every decryptable record of a page is archived, ONE
transaction checks the puller's fencing token, keeps the page's undecryptable records in the
quarantine, sets the page's recall flags and media rows, and moves ``seq`` forward (never back).
A crash before it re-reads the page (the archive's unique key drops what was stored); a puller
whose lock lapsed cannot move the cursor (:class:`~bot.pull_lock.FencedOut`).

Every function runs on the writer thread inside a transaction and may run twice (the writer
retries a failed batch unit by unit): no side effects outside the connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Table, func, select, update

from bot.pull_lock import FencedOut
from monitor.archive.chain import QUARANTINE_FIELDS, Chain, Entry, quarantine_digest
from monitor.archive.chain_store import chain_rows
from monitor.archive.flags import NewFlag, record_flags
from monitor.archive.media_rows import record_media
from monitor.archive.msgaudit_models import MsgauditCursorRecord, MsgauditQuarantineRecord
from monitor.archive.upsert import insert_ignore, upsert
from wecom_sdk.messages import MediaRef
from wecom_sdk.msgaudit import ChatDataEntry

__all__ = [
    "SOURCE",
    "CursorState",
    "PageCommit",
    "QuarantineEntry",
    "QuarantineRow",
    "bump_keys_generation",
    "claim_fence",
    "commit_page",
    "cursor_state",
    "mark_caught_up",
    "mark_lag_alerted",
    "quarantine_count",
    "quarantined",
    "release_quarantined",
    "retry_failed",
]

SOURCE = "default"
"""The cursor row of the one archive this deployment pulls."""

_CURSOR: Table = MsgauditCursorRecord.__table__
_QUARANTINE: Table = MsgauditQuarantineRecord.__table__


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@dataclass(frozen=True, slots=True)
class CursorState:
    """The cursor row as a puller (or ``msgaudit status``) sees it."""

    fence: int
    seq: int
    newest_msgtime: int
    keys_generation: int
    caught_up_at: datetime | None
    lag_alerted_at: datetime | None
    updated_at: datetime | None


_STATE_COLUMNS = tuple(_CURSOR.c[f.name] for f in fields(CursorState))
"""The cursor row's columns in :class:`CursorState`'s field order."""


def _state(row: Row[Any]) -> CursorState:
    return CursorState(**row._mapping)


def _new_row(now: float) -> dict[str, object]:
    return {
        "source": SOURCE,
        "seq": 0,
        "fence": 1,
        "newest_msgtime": 0,
        "keys_generation": 0,
        "updated_at": _at(now),
    }


def claim_fence(conn: Connection, now: float) -> CursorState:
    """Take the next fencing token; returns it with the stored cursor."""
    stmt = (
        upsert(conn.dialect, _CURSOR, ["source"], {"fence": _CURSOR.c.fence + 1})
        .values(**_new_row(now))
        .returning(*_STATE_COLUMNS)
    )
    return _state(conn.execute(stmt).one())


def cursor_state(conn: Connection) -> CursorState | None:
    """The cursor row, or None before the first pull."""
    row = conn.execute(select(*_STATE_COLUMNS).where(_CURSOR.c.source == SOURCE)).first()
    return _state(row) if row is not None else None


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """A record that could not be decrypted, with why."""

    entry: ChatDataEntry
    reason: str
    errcode: int


@dataclass(frozen=True, slots=True)
class PageCommit:
    """Everything :func:`commit_page` writes for one page."""

    fence: int
    #: The page's highest seq (the cursor moves there, never back).
    seq: int
    #: The newest msgtime (ms) among the page's archived records (0: none).
    newest_msgtime: int
    now: float
    #: Whether this page reached the end of what WeCom holds (a short page).
    caught_up: bool
    quarantined: Sequence[QuarantineEntry] = ()
    flags: Sequence[NewFlag] = field(default_factory=tuple)
    #: Media files to download, by the archive key of the message that carries them.
    media: Sequence[tuple[str, Sequence[MediaRef]]] = ()


def _greatest(conn: Connection, column: ColumnElement[int], value: int) -> ColumnElement[int]:
    """The larger of ``column`` and ``value`` (SQLite's two-argument max, PostgreSQL's greatest)."""
    larger = func.max if conn.dialect.name == "sqlite" else func.greatest
    return larger(column, value)


def commit_page(conn: Connection, page: PageCommit) -> None:
    """Quarantine, flags and the cursor of one page, in one transaction.

    Raises:
        FencedOut: the stored fence is not ``page.fence`` (a newer puller took over).
    """
    now = _at(page.now)
    values: dict[str, object] = {
        "seq": _greatest(conn, _CURSOR.c.seq, page.seq),
        "newest_msgtime": _greatest(conn, _CURSOR.c.newest_msgtime, page.newest_msgtime),
        "updated_at": now,
    }
    if page.caught_up:
        values["caught_up_at"] = now
    moved = conn.execute(
        update(_CURSOR)
        .where(_CURSOR.c.source == SOURCE, _CURSOR.c.fence == page.fence)
        .values(**values)
    )
    if moved.rowcount != 1:
        raise FencedOut(SOURCE)
    if page.quarantined:
        _quarantine(conn, page.quarantined, now)
    if page.flags:
        record_flags(conn, page.flags)
    for dedupe_key, refs in page.media:
        record_media(conn, refs, dedupe_key, now)


def _quarantine(conn: Connection, failures: Sequence[QuarantineEntry], now: datetime) -> None:
    """Keep the records whole, each in the archive's hash chain (a page pulled again adds none)."""
    stmt = insert_ignore(conn.dialect, _QUARANTINE, ["seq"]).returning(_QUARANTINE.c.id)
    entries: list[Entry] = []
    for failure in failures:  # one by one: each new row's id goes into the chain
        entry = failure.entry
        row = {
            "seq": entry.seq,
            "msgid": entry.msgid,
            "publickey_ver": entry.publickey_ver,
            "encrypt_random_key": entry.encrypt_random_key,
            "encrypt_chat_msg": entry.encrypt_chat_msg,
            "reason": failure.reason,
            "errcode": failure.errcode,
            "attempts": 1,
            "created_at": now,
            "last_tried_at": now,
        }
        row_id = conn.execute(stmt, row).scalar_one_or_none()
        if row_id is not None:
            digest = quarantine_digest([row[name] for name in QUARANTINE_FIELDS])
            entries.append(Entry("msgaudit_quarantine", int(row_id), digest))
    if entries:
        chain_rows(conn, Chain.ARCHIVE, entries)


def bump_keys_generation(conn: Connection, now: float) -> int:
    """Tell every worker to reload its private keys; returns the new generation."""
    stmt = (
        upsert(
            conn.dialect,
            _CURSOR,
            ["source"],
            {"keys_generation": _CURSOR.c.keys_generation + 1, "updated_at": _at(now)},
        )
        .values(**{**_new_row(now), "fence": 0, "keys_generation": 1})
        .returning(_CURSOR.c.keys_generation)
    )
    return int(conn.execute(stmt).scalar_one())


def mark_caught_up(conn: Connection, fence: int, now: float) -> None:
    """A pull found nothing new: it is caught up (the lag alert tells this from falling behind)."""
    conn.execute(
        update(_CURSOR)
        .where(_CURSOR.c.source == SOURCE, _CURSOR.c.fence == fence)
        .values(caught_up_at=_at(now))
    )


def mark_lag_alerted(conn: Connection, at: float | None) -> None:
    """Remember when the operators were told about the lag (None: the lag is over)."""
    conn.execute(
        update(_CURSOR)
        .where(_CURSOR.c.source == SOURCE)
        .values(lag_alerted_at=_at(at) if at is not None else None)
    )


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    """A quarantined record as ``msgaudit quarantine list`` and a retry see it."""

    entry: ChatDataEntry
    reason: str
    errcode: int
    attempts: int
    created_at: datetime
    last_tried_at: datetime


def quarantined(conn: Connection, *, after_seq: int = 0, limit: int = 1000) -> list[QuarantineRow]:
    """Records still in quarantine (not released), by seq, after ``after_seq``."""
    q = _QUARANTINE.c
    rows = conn.execute(
        select(
            q.seq,
            q.msgid,
            q.publickey_ver,
            q.encrypt_random_key,
            q.encrypt_chat_msg,
            q.reason,
            q.errcode,
            q.attempts,
            q.created_at,
            q.last_tried_at,
        )
        .where(q.released_at.is_(None), q.seq > after_seq)
        .order_by(q.seq)
        .limit(limit)
    )
    return [
        QuarantineRow(
            ChatDataEntry(
                int(r.seq),
                str(r.msgid),
                int(r.publickey_ver),
                str(r.encrypt_random_key),
                str(r.encrypt_chat_msg),
            ),
            str(r.reason),
            int(r.errcode),
            int(r.attempts),
            r.created_at,
            r.last_tried_at,
        )
        for r in rows
    ]


def quarantine_count(conn: Connection) -> int:
    """How many records wait in quarantine."""
    q = _QUARANTINE.c
    query = select(func.count()).select_from(_QUARANTINE).where(q.released_at.is_(None))
    return int(conn.execute(query).scalar_one())


def release_quarantined(
    conn: Connection,
    seqs: Sequence[int],
    now: float,
    flags: Sequence[NewFlag] = (),
    media: Sequence[tuple[str, Sequence[MediaRef]]] = (),
) -> None:
    """Mark records released (their messages are archived now), with their flags and media."""
    if seqs:
        conn.execute(
            update(_QUARANTINE)
            .where(_QUARANTINE.c.seq.in_(list(seqs)), _QUARANTINE.c.released_at.is_(None))
            .values(released_at=_at(now), last_tried_at=_at(now))
        )
    if flags:
        record_flags(conn, flags)
    for dedupe_key, refs in media:
        record_media(conn, refs, dedupe_key, _at(now))


def retry_failed(conn: Connection, failures: Sequence[QuarantineEntry], now: float) -> None:
    """Count another failed attempt for each record, with its latest reason."""
    for failure in failures:
        conn.execute(
            update(_QUARANTINE)
            .where(_QUARANTINE.c.seq == failure.entry.seq)
            .values(
                attempts=_QUARANTINE.c.attempts + 1,
                reason=failure.reason,
                errcode=failure.errcode,
                last_tried_at=_at(now),
            )
        )
