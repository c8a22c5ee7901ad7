"""The daily anchor: both chains' heads posted to a WeCom group chat, outside the database.

``archive verify`` shows the chains agree with themselves; someone able to rewrite the whole
database could rebuild them so they still would. A head posted once a day where the database
cannot reach fixes each chain as it was then: its block at that seq must still have that hash.

One worker posts per (UTC) day, whatever the number of workers and hosts: it claims the day's
``chain_anchor`` row with a lease (through the database, so no Redis is needed), posts through
``appchat/send``, then marks the day posted and records the post in the audit chain (action
``anchor``, the heads in its detail) in one transaction. A worker whose post fails releases its
claim and the next check (by any worker) tries again; one that dies mid-post leaves its lease to
run out. So a day gets its post while any worker runs, twice at worst (an answer lost on the way).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, Table, update

from monitor.archive.audit import AuditEvent, record_audit_event
from monitor.archive.chain import Chain
from monitor.archive.chain_models import ChainAnchorRecord
from monitor.archive.chain_store import Head, read_heads
from monitor.archive.upsert import insert_ignore
from monitor.archive.writer import GroupCommitWriter
from monitor.errors import StorageError
from monitor.log import chain_log
from wecom_sdk.errors import WeComError

__all__ = ["ANCHOR_ACTION", "Anchor", "ChainAnchor", "ChatPoster", "anchor_text"]

ANCHOR_ACTION = "anchor"
"""The audit action of a posted anchor."""

_ANCHORS: Table = ChainAnchorRecord.__table__


class ChatPoster(Protocol):
    """Where anchors go: ``WeComClient.appchat`` (:class:`wecom_sdk.client.AppChatApi`)."""

    async def send_text(self, chatid: str, content: str) -> dict[str, Any]:
        """Post ``content`` to the group chat ``chatid``; raise a ``WeComError`` on failure."""
        ...


@dataclass(frozen=True, slots=True)
class Anchor:
    """One day's post: the day (UTC) and the heads posted."""

    day: str
    heads: dict[Chain, Head]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def anchor_text(anchor: Anchor) -> str:
    """The posted text: a title line, then ``<chain> <seq> <hash>`` per chain (as ``archive head``)."""
    lines = [f"wecom-sentinel hash chain heads, {anchor.day} (UTC)"]
    lines += [f"{chain} {head.seq} {head.block_hash}" for chain, head in anchor.heads.items()]
    return "\n".join(lines)


class ChainAnchor:
    """Posts the chain heads to ``chat_id`` once a day; :meth:`run` is the background loop.

    ``owner`` names this worker in its claims (default: the pid and a random part); ``clock``
    gives aware UTC datetimes. A claim lasts ``lease_s`` unless released or marked posted.
    """

    def __init__(
        self,
        writer: GroupCommitWriter,
        poster: ChatPoster,
        chat_id: str,
        *,
        owner: str | None = None,
        clock: Callable[[], datetime] = _utcnow,
        check_interval_s: float = 600.0,
        lease_s: float = 120.0,
    ) -> None:
        self._writer = writer
        self._poster = poster
        self._chat_id = chat_id
        self._owner = owner or f"{os.getpid()}-{secrets.token_hex(6)}"
        self._clock = clock
        self._interval = check_interval_s
        self._lease = timedelta(seconds=lease_s)

    async def run(self) -> None:
        """Check now, then every ``check_interval_s``, until cancelled."""
        while True:
            try:
                await self.post_if_due()
            except StorageError as exc:  # the database is away: the next check tries again
                chain_log.warning("chain anchor check failed (%s)", exc)
            except Exception:  # a bug must not end the daily posts; the next check tries again
                chain_log.exception("chain anchor check failed")
            await asyncio.sleep(self._interval)

    async def post_if_due(self) -> Anchor | None:
        """Post today's anchor unless it is posted or another worker is posting it.

        Returns what was posted, or None. A failed post is logged and released for a retry.
        """
        now = self._clock()
        day = now.astimezone(UTC).date().isoformat()
        heads = await self._writer.run(lambda conn: self._claim(conn, day, now))
        if heads is None:
            return None
        anchor = Anchor(day, heads)
        try:
            await self._poster.send_text(self._chat_id, anchor_text(anchor))
        except Exception as exc:
            await self._writer.run(lambda conn: self._release(conn, day, self._clock()))
            if not isinstance(exc, WeComError):
                raise
            chain_log.warning("chain anchor for %s not posted (%s); retrying later", day, exc)
            return None
        await self._writer.run(lambda conn: self._posted(conn, anchor, self._clock()))
        chain_log.info(
            "chain heads for %s posted: %s",
            day,
            ", ".join(f"{chain} {head.seq}" for chain, head in heads.items()),
        )
        return anchor

    def _claim(self, conn: Connection, day: str, now: datetime) -> dict[Chain, Head] | None:
        # The row is made free (its lease ends now), then taken only if free and not posted: on
        # PostgreSQL a second worker's UPDATE waits for the first one's and then finds it taken.
        conn.execute(
            insert_ignore(conn.dialect, _ANCHORS, ["day"]),
            {"day": day, "owner": "", "lease_until": now},
        )
        taken = conn.execute(
            update(_ANCHORS)
            .where(
                _ANCHORS.c.day == day,
                _ANCHORS.c.posted_at.is_(None),
                _ANCHORS.c.lease_until <= now,
            )
            .values(owner=self._owner, lease_until=now + self._lease)
        )
        return read_heads(conn) if taken.rowcount == 1 else None

    def _release(self, conn: Connection, day: str, now: datetime) -> None:
        conn.execute(
            update(_ANCHORS)
            .where(_ANCHORS.c.day == day, _ANCHORS.c.owner == self._owner)
            .values(lease_until=now)
        )

    def _posted(self, conn: Connection, anchor: Anchor, now: datetime) -> None:
        conn.execute(update(_ANCHORS).where(_ANCHORS.c.day == anchor.day).values(posted_at=now))
        record_audit_event(
            conn,
            AuditEvent(
                at=now,
                actor="system",
                source="system",
                action=ANCHOR_ACTION,
                target=self._chat_id,
                detail={
                    "day": anchor.day,
                    **{
                        chain.value: {"seq": head.seq, "hash": head.block_hash}
                        for chain, head in anchor.heads.items()
                    },
                },
            ),
        )
