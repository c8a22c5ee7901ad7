"""Retention: ``archive purge`` deletes archived messages older than ``[archive].retention_days``
that no legal hold keeps, with everything hanging off them, and leaves the hash chain verifiable.

A purge runs in batches of :attr:`PurgeOptions.batch_size` messages, oldest id first, each its
own short transaction (SQLite: ``BEGIN IMMEDIATE``), so the bot keeps writing between them and
memory stays bounded. In each batch transaction, for the messages received before the cutoff that
no hold keeps (:class:`monitor.archive.holds.HoldSet`, plus conversations with an open case,
re-checked in the transaction):

1. their digests are read as their blocks recorded them (message with hits, flags),
2. their hits, alert links (``alert_message``), message flags, media rows and the rows of
   :data:`DEPENDENT_DELETERS` (the search index) are deleted, then the messages,
3. a purge checkpoint block naming every deleted chained row with its digest is appended to the
   archive chain (:func:`monitor.archive.chain_store.append_checkpoint`), as the last statement.

After each commit, media files no remaining ``media_file`` row refers to are removed from the
media store (content-addressed files may be shared by several messages). Then closed cases are
purged: an alert resolved or dismissed before the cutoff, last hit before the cutoff, in no held
conversation, whose linked messages are all gone or would all be purged, is deleted with its
notes, outbox rows and digest-hold rows. Open cases are never deleted, and keep their
conversation's messages (an open case is an implicit hold). Audit rows are never purged.

A dry run reads the same batches and counts, writing nothing. A real run ends with one audit row
(``archive_purge``: cutoff, counts, and the archive chain's head after the last checkpoint).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, func, select

from monitor.alerts.models import AlertMessageLink, AlertRecord, HeldAlertRecord, OutboxRecord
from monitor.alerts.policy import AlertStatus
from monitor.archive.audit import AuditEvent, record_audit_event
from monitor.archive.chain import FLAG_FIELDS, Chain, Checkpoint, Entry, flag_digest
from monitor.archive.chain_scan import message_digests, row_digests
from monitor.archive.chain_store import append_checkpoint, read_heads
from monitor.archive.holds import HoldSet, load_hold_set
from monitor.archive.kf_models import MessageFlagRecord
from monitor.archive.media_store import InvalidMediaName, MediaStore
from monitor.archive.models import HitRecord, MessageRecord
from monitor.archive.msgaudit_models import MediaRecord
from monitor.archive.search_index import delete_from_index
from monitor.archive.writer import SQLITE_BEGIN_OPTION
from monitor.review.models import CaseNoteRecord

__all__ = [
    "DEFAULT_BATCH",
    "DEPENDENT_DELETERS",
    "DependentDeleter",
    "PurgeCounts",
    "PurgeOptions",
    "cutoff_for",
    "purge",
]

DEFAULT_BATCH = 500
"""Messages per batch transaction: short enough that the bot's writes wait milliseconds."""

DependentDeleter = Callable[[Connection, Sequence[int]], object]
"""Deletes, on the batch's transaction, rows of another module that hang off these message ids."""

DEPENDENT_DELETERS: tuple[DependentDeleter, ...] = (delete_from_index,)
"""Called with each batch's message ids before the messages are deleted: the search index (whose
SQLite rows are removed by their tokens, recomputed from the stored text)."""

Tick = Callable[[int], object]

_MESSAGES: Table = MessageRecord.__table__
_HITS: Table = HitRecord.__table__
_FLAGS: Table = MessageFlagRecord.__table__
_MEDIA: Table = MediaRecord.__table__
_LINKS: Table = AlertMessageLink.__table__
_ALERTS: Table = AlertRecord.__table__
_NOTES: Table = CaseNoteRecord.__table__
_OUTBOX: Table = OutboxRecord.__table__
_HELD_ALERTS: Table = HeldAlertRecord.__table__
_CLOSED = (AlertStatus.RESOLVED.value, AlertStatus.FALSE_POSITIVE.value)


def cutoff_for(now: datetime, retention_days: int) -> datetime | None:
    """Messages received before this are past retention; None when kept forever (0 days)."""
    if retention_days < 0:
        raise ValueError("retention_days must not be negative")
    return None if retention_days == 0 else now - timedelta(days=retention_days)


@dataclass(slots=True)
class PurgeCounts:
    """What a purge deleted (or, dry, would delete), and what holds kept."""

    messages: int = 0
    hits: int = 0
    flags: int = 0
    alert_links: int = 0
    media_rows: int = 0
    media_files: int = 0
    kept_by_hold: int = 0
    """Messages past retention that a hold (or an open case) kept."""
    alerts: int = 0
    notes: int = 0
    checkpoints: int = 0
    """Checkpoint blocks appended to the archive chain (one per batch that deleted rows)."""

    def add(self, other: PurgeCounts) -> None:
        for name in (f.name for f in fields(self)):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class PurgeOptions:
    """How to purge."""

    cutoff: datetime
    """Messages received before this aware instant are past retention."""
    retention_days: int
    batch_size: int = DEFAULT_BATCH
    dry_run: bool = False
    media_store: MediaStore | None = None
    """Where media files are (``[msgaudit].media_dir``); None: rows only."""
    dependents: tuple[DependentDeleter, ...] = field(default=DEPENDENT_DELETERS)
    actor: str = "cli"
    source: str = "cli"
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if self.cutoff.tzinfo is None:
            raise ValueError("cutoff must be timezone-aware")
        if self.batch_size < 1:
            raise ValueError("batch_size must be positive")


@dataclass(frozen=True, slots=True)
class _Candidate:
    id: int
    dedupe_key: str
    conversation_id: str | None
    from_user: str
    to_user: str


def count_expired(engine: Engine, cutoff: datetime) -> int:
    """Messages received before ``cutoff`` (a progress bar's total)."""
    with engine.connect() as conn:
        query = select(func.count()).select_from(_MESSAGES)
        return int(conn.execute(query.where(_MESSAGES.c.received_at < cutoff)).scalar_one())


def purge(engine: Engine, options: PurgeOptions, progress: Tick | None = None) -> PurgeCounts:
    """Purge (or count, dry) what is past retention; see the module docstring."""
    writes = engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
    with engine.connect() as conn:
        holds = load_hold_set(conn)
    total = PurgeCounts()
    after = 0
    while True:
        with contextlib.ExitStack() as stack:
            conn = stack.enter_context(engine.connect() if options.dry_run else writes.connect())
            stack.enter_context(conn.begin())
            batch = _candidates(conn, options.cutoff, after, options.batch_size)
            if not batch:
                break
            after = batch[-1].id
            counts, shas = _batch(conn, batch, holds, options)  # dry: reads only
        total.add(counts)
        if shas and not options.dry_run:
            total.media_files += _remove_files(engine, shas, options.media_store)
        if progress is not None:
            progress(len(batch))
    total.add(_purge_cases(engine, writes, holds, options))
    if not options.dry_run:
        with writes.begin() as conn:
            head = read_heads(conn)[Chain.ARCHIVE]
            record_audit_event(
                conn,
                AuditEvent(
                    at=options.clock(),
                    actor=options.actor,
                    source=options.source,
                    action="archive_purge",
                    target="archive",
                    detail={
                        "cutoff": options.cutoff.astimezone(UTC).isoformat(),
                        "retention_days": options.retention_days,
                        "archive_head": f"{head.seq} {head.block_hash}",
                        **total.as_dict(),
                    },
                ),
            )
    return total


def _candidates(conn: Connection, cutoff: datetime, after: int, limit: int) -> list[_Candidate]:
    m = _MESSAGES.c
    rows = conn.execute(
        select(m.id, m.dedupe_key, m.conversation_id, m.from_user, m.to_user)
        .where(m.received_at < cutoff, m.id > after)
        .order_by(m.id)
        .limit(limit)
    )
    return [_Candidate(int(r[0]), str(r[1]), r[2], str(r[3] or ""), str(r[4] or "")) for r in rows]


def _open_case_conversations(conn: Connection, conversations: Iterable[str]) -> set[str]:
    names = sorted(set(conversations))
    if not names:
        return set()
    query = select(_ALERTS.c.conversation_id).where(
        _ALERTS.c.conversation_id.in_(names), _ALERTS.c.status.not_in(_CLOSED)
    )
    return {str(row[0]) for row in conn.execute(query)}


def _batch(
    conn: Connection, batch: list[_Candidate], holds: HoldSet, options: PurgeOptions
) -> tuple[PurgeCounts, set[str]]:
    opened = _open_case_conversations(conn, (c.conversation_id for c in batch if c.conversation_id))
    doomed = [
        c
        for c in batch
        if not holds.keeps(c.conversation_id, c.from_user, c.to_user)
        and c.conversation_id not in opened
    ]
    counts = PurgeCounts(kept_by_hold=len(batch) - len(doomed), messages=len(doomed))
    if not doomed:
        return counts, set()
    ids = [c.id for c in doomed]
    keys = [c.dedupe_key for c in doomed]
    flag_ids = [
        int(r[0]) for r in conn.execute(select(_FLAGS.c.id).where(_FLAGS.c.dedupe_key.in_(keys)))
    ]
    media = conn.execute(
        select(_MEDIA.c.id, _MEDIA.c.sha256).where(_MEDIA.c.dedupe_key.in_(keys))
    ).all()
    counts.flags = len(flag_ids)
    counts.media_rows = len(media)
    counts.hits = _count(conn, _HITS, _HITS.c.message_id.in_(ids))
    counts.alert_links = _count(conn, _LINKS, _LINKS.c.message_id.in_(ids))
    shas = {str(sha) for _id, sha in media if sha}
    if options.dry_run:
        counts.media_files = len(_unreferenced(conn, shas, [int(i) for i, _sha in media]))
        return counts, shas
    digests = message_digests(conn, _MESSAGES, _HITS, ids)
    flag_digests = row_digests(conn, _FLAGS, FLAG_FIELDS, flag_digest, flag_ids)
    conn.execute(delete(_HITS).where(_HITS.c.message_id.in_(ids)))
    conn.execute(delete(_LINKS).where(_LINKS.c.message_id.in_(ids)))
    for deleter in options.dependents:
        deleter(conn, ids)
    if flag_ids:
        conn.execute(delete(_FLAGS).where(_FLAGS.c.id.in_(flag_ids)))
    if media:
        conn.execute(delete(_MEDIA).where(_MEDIA.c.id.in_([int(i) for i, _sha in media])))
    conn.execute(delete(_MESSAGES).where(_MESSAGES.c.id.in_(ids)))
    entries = [Entry("message", i, d) for i, d in digests.items()]
    entries += [Entry("message_flag", i, d) for i, d in flag_digests.items()]
    append_checkpoint(conn, Checkpoint(options.cutoff, tuple(entries)), options.clock())
    counts.checkpoints = 1
    return counts, shas


def _count(conn: Connection, table: Table, where: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(table).where(where)).scalar_one())


def _unreferenced(conn: Connection, shas: set[str], excluding: Sequence[int] = ()) -> set[str]:
    """Of ``shas``, those no ``media_file`` row refers to (rows ``excluding`` aside)."""
    if not shas:
        return set()
    query = select(_MEDIA.c.sha256).distinct().where(_MEDIA.c.sha256.in_(sorted(shas)))
    if excluding:
        query = query.where(_MEDIA.c.id.not_in(list(excluding)))
    return shas - {str(row[0]) for row in conn.execute(query)}


def _remove_files(engine: Engine, shas: set[str], store: MediaStore | None) -> int:
    """Remove the stored files no row refers to any more; returns how many were removed."""
    if store is None:
        return 0
    with engine.connect() as conn:
        orphans = _unreferenced(conn, shas)
    removed = 0
    for sha in sorted(orphans):
        try:
            store.path(sha).unlink()
        except (FileNotFoundError, InvalidMediaName):
            continue
        removed += 1
    return removed


def _purge_cases(
    engine: Engine, writes: Engine, holds: HoldSet, options: PurgeOptions
) -> PurgeCounts:
    """Closed cases past retention whose messages are all gone or purged (see the module)."""
    total = PurgeCounts()
    after = ""
    while True:
        with engine.connect() if options.dry_run else writes.connect() as conn, conn.begin():
            a = _ALERTS.c
            rows = conn.execute(
                select(a.alert_id, a.conversation_id)
                .where(
                    a.status.in_(_CLOSED),
                    a.closed_at < options.cutoff,
                    a.last_at < options.cutoff,
                    a.alert_id > after,
                )
                .order_by(a.alert_id)
                .limit(options.batch_size)
            ).all()
            if not rows:
                return total
            after = str(rows[-1][0])
            ids = [
                str(alert_id)
                for alert_id, conversation in rows
                if conversation not in holds.conversations
                and not _keeps_a_linked_message(conn, str(alert_id), holds, options.cutoff)
            ]
            if not ids:
                continue
            total.alerts += len(ids)
            total.notes += _count(conn, _NOTES, _NOTES.c.alert_id.in_(ids))
            if options.dry_run:
                continue
            conn.execute(delete(_NOTES).where(_NOTES.c.alert_id.in_(ids)))
            conn.execute(delete(_OUTBOX).where(_OUTBOX.c.alert_id.in_(ids)))
            conn.execute(delete(_HELD_ALERTS).where(_HELD_ALERTS.c.alert_id.in_(ids)))
            conn.execute(delete(_LINKS).where(_LINKS.c.alert_id.in_(ids)))
            conn.execute(delete(_ALERTS).where(_ALERTS.c.alert_id.in_(ids)))


def _keeps_a_linked_message(
    conn: Connection, alert_id: str, holds: HoldSet, cutoff: datetime
) -> bool:
    """Whether a message linked to the alert stays (recent, or held)."""
    m = _MESSAGES.c
    linked = conn.execute(
        select(m.received_at, m.conversation_id, m.from_user, m.to_user)
        .join(_LINKS, _LINKS.c.message_id == m.id)
        .where(_LINKS.c.alert_id == alert_id)
    )
    return any(
        received >= cutoff or holds.keeps(conversation, str(sender or ""), str(to or ""))
        for received, conversation, sender, to in linked
    )
