"""One pulled page of the conversation archive: open, archive, then commit the cursor.

Order of work (the no-data-loss rule):

1. every entry is opened in one worker thread (:mod:`bot.msgaudit.opening`); one that cannot be
   opened is kept for the quarantine;
2. names of the page's customers are resolved (cached, :class:`bot.directory.NameDirectory`);
3. every record goes through the pipeline (:func:`bot.inbound.chat.feed`: dedupe, rules with the
   real author, split window, alerts, durable archive); one conversation's records in order,
   conversations side by side so their stores share group commits;
4. :func:`bot.msgaudit.store.commit_page`: fence check, quarantine rows, recall flags, media rows,
   the cursor. A crash before it re-reads the page; the archive's unique key drops the repeats.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from bot.config import Config
from bot.inbound.chat import feed, per_conversation
from bot.inbound.pipeline import Pipeline
from bot.msgaudit.convert import Parties, parties_of, to_chat_message
from bot.msgaudit.opening import Opened
from bot.msgaudit.store import PageCommit, QuarantineEntry, commit_page
from monitor.archive import GroupCommitWriter
from monitor.archive.flags import NewFlag
from monitor.archive.kf_models import MessageFlag
from wecom_sdk.messages.msgaudit import (
    ArchiveRecord,
    ArchiveRevoke,
    MediaRef,
    key_of_msgid,
    media_parts,
)

__all__ = ["Names", "PageOutcome", "archive_records", "commit", "recall_flags"]


class Names(Protocol):
    """Display names by id ("" when unknown); :class:`bot.directory.NameDirectory` is one."""

    async def customer_name(self, external_userid: str) -> str:
        """The customer's name, or "" (callers show the id)."""

    async def staff_name(self, userid: str) -> str:
        """The staff member's name, or "" (callers show the userid)."""


@dataclass(slots=True)
class PageOutcome:
    """What one page (or a quarantine retry) did."""

    archived: int = 0
    repeats: int = 0
    quarantined: list[QuarantineEntry] = field(default_factory=list)
    flags: list[NewFlag] = field(default_factory=list)
    records: list[ArchiveRecord] = field(default_factory=list)

    @property
    def media(self) -> list[tuple[str, tuple[MediaRef, ...]]]:
        """The media files of the page's records, by message key (downloaded after the commit)."""
        return [(r.dedupe_key, refs) for r in self.records if (refs := media_parts(r))]


def recall_flags(records: Sequence[ArchiveRecord], now: float) -> list[NewFlag]:
    """A recall marks the original as recalled; the original stays archived (and reviewable)."""
    at = datetime.fromtimestamp(now, UTC)
    return [
        NewFlag(key_of_msgid(r.pre_msgid), MessageFlag.RECALLED, "recall", r.dedupe_key, at)
        for r in records
        if isinstance(r, ArchiveRevoke) and r.pre_msgid
    ]


async def _names(parties: Iterable[Parties], names: Names | None) -> dict[tuple[str, str], str]:
    """``{("customer"|"staff", id): name}`` for the people of a page (cached by the directory)."""
    if names is None:
        return {}
    people: set[tuple[str, str]] = set()
    for who in parties:
        if who.customer_id:
            people.add(("customer", who.customer_id))
        if who.staff_userid:
            people.add(("staff", who.staff_userid))
    slots = asyncio.Semaphore(8)

    async def one(person: tuple[str, str]) -> tuple[tuple[str, str], str]:
        kind, ident = person
        async with slots:
            if kind == "customer":
                return person, await names.customer_name(ident)
            return person, await names.staff_name(ident)

    return dict(await asyncio.gather(*(one(p) for p in sorted(people))))


async def archive_records(
    opened: Sequence[Opened],
    *,
    pipeline: Pipeline,
    config: Config,
    names: Names | None,
    now: float,
) -> PageOutcome:
    """Archive every opened record through the pipeline; collect quarantine and flags.

    Raises:
        monitor.errors.StorageError: a store failed (nothing of the page is committed).
    """
    outcome = PageOutcome()
    records: list[tuple[ArchiveRecord, Parties]] = []
    for item in opened:
        if item.record is not None:
            records.append((item.record, parties_of(item.record)))
        elif item.failure is not None:
            outcome.quarantined.append(item.failure)
    names_of = await _names((parties for _record, parties in records), names)

    async def archive(pair: tuple[ArchiveRecord, Parties]) -> None:
        record, parties = pair
        msg = to_chat_message(
            record,
            parties,
            customer_name=names_of.get(("customer", parties.customer_id), ""),
            staff_name=names_of.get(("staff", parties.staff_userid), ""),
        )
        if (await feed(pipeline, config, msg)).stored:
            outcome.archived += 1
        else:
            outcome.repeats += 1

    await per_conversation(records, lambda pair: pair[1].conversation_id, archive)
    outcome.records = [record for record, _parties in records]
    outcome.flags = recall_flags(outcome.records, now)
    return outcome


async def commit(
    writer: GroupCommitWriter,
    *,
    fence: int,
    entries_seq: int,
    outcome: PageOutcome,
    caught_up: bool,
    clock: Callable[[], float],
) -> None:
    """Commit one page's quarantine, flags and cursor (fenced)."""
    newest = max((r.msgtime for r in outcome.records), default=0)
    page = PageCommit(
        fence=fence,
        seq=entries_seq,
        newest_msgtime=newest,
        now=clock(),
        caught_up=caught_up,
        quarantined=tuple(outcome.quarantined),
        flags=tuple(outcome.flags),
        media=outcome.media,
    )
    await writer.run(lambda conn: commit_page(conn, page))
