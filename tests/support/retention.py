"""A small archive for retention tests, built through the real write paths (the group-commit
writer, the archive store, flags, holds), with messages old and new, holds, cases and media.

:func:`seed` returns the message ids by name. Retention :data:`DAYS`; "old" messages were received
:data:`OLD_AGE` ago, "new" ones a day ago. What a purge must do with each:

======================  ===========================================  =========
name                    what                                         purge
======================  ===========================================  =========
``old_hit``             kf:K:wmA, 2 hits, a flag, a stored media      deleted
                        file, linked to a closed old case with a note
``old_staff``           kf:K:wmA, written by servicer li              deleted
``new``                 kf:K:wmA, a day old                           kept
``conv_held``           kf:K:wmB (conversation hold)                  kept
``staff_wrote``         kf:K:wmC, written by servicer zhang (hold)    kept
``staff_conv``          kf:K:wmC, the customer's, zhang's chat        kept
``open_case``           kf:K:wmD, its conversation has an open case   kept
``mix_held``            kf:K:wmB, in one block with ``mix_gone``      kept
``mix_gone``            kf:K:wmE                                      deleted
======================  ===========================================  =========
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, Engine, insert, select

from monitor.alerts.models import AlertMessageLink, AlertRecord
from monitor.archive import Archive, ArchivedHit, GroupCommitWriter, InboundRecord
from monitor.archive.flags import NewFlag, record_flags
from monitor.archive.holds import set_hold
from monitor.archive.kf_models import MessageFlag
from monitor.archive.media_store import MediaStore
from monitor.archive.models import MessageRecord
from monitor.archive.msgaudit_models import MediaRecord, MediaStatus
from monitor.review.models import CaseNoteRecord
from tests.support.storage import Gate, queued

DAYS = 30
OLD_AGE = timedelta(days=400)
DELETED = ("old_hit", "old_staff", "mix_gone")
KEPT = ("new", "conv_held", "staff_wrote", "staff_conv", "open_case", "mix_held")
MEDIA_BYTES = b"\x89PNG\r\n\x1a\n retention test image"


@dataclass(frozen=True)
class Seeded:
    ids: dict[str, int]
    now: datetime
    media_sha: str

    @property
    def cutoff(self) -> datetime:
        return self.now - timedelta(days=DAYS)


def message(
    key: str,
    conversation: str,
    *,
    sender: str = "wmCustomer",
    direction: str = "customer",
    content: str = "你好",
    hits: tuple[ArchivedHit, ...] = (),
) -> InboundRecord:
    return InboundRecord(
        dedupe_key=key,
        channel="kf",
        msg_type="text",
        from_user=sender,
        to_user="wkK",
        create_time=1_700_000_000,
        content=content,
        raw=f'{{"text": "{key}"}}',
        rules_version="r1" if hits else None,
        conversation_id=conversation,
        direction=direction,
        hits=hits,
    )


def _alert(alert_id: str, conversation: str, status: str, at: datetime) -> dict[str, object]:
    closed = status in ("resolved", "false_positive")
    return {
        "alert_id": alert_id,
        "conversation_id": conversation,
        "kind": "customer_risk",
        "severity": 3,
        "words": '["投诉"]',
        "count": 1,
        "first_at": at,
        "last_at": at,
        "latest_text": "我要投诉",
        "latest_message_id": None,
        "recipients": '["boss"]',
        "status": status,
        "closed_by": "li.na" if closed else "",
        "closed_at": at if closed else None,
        "notified_severity": 3,
    }


async def seed(
    engine: Engine, media_root: Path | None = None, now: datetime | None = None
) -> Seeded:
    """Build the archive described in the module docstring on ``engine`` (schema at head)."""
    now = now or datetime.now(UTC)
    old, new = now - OLD_AGE, now - timedelta(days=1)
    when = {"t": old}
    media_sha = ""
    if media_root is not None:
        media_sha = MediaStore(media_root).put([MEDIA_BYTES]).sha256
    ids: dict[str, int] = {}
    async with GroupCommitWriter(engine) as writer:
        archive = Archive(writer, clock=lambda: when["t"])

        async def store(name: str, record: InboundRecord) -> None:
            ids[name] = (await archive.store_inbound(record)).message_id

        hits = (
            ArchivedHit("投诉", "customer_risk", 3, 2, 4),
            ArchivedHit("12315", "customer_risk", 4, 4, 9),
        )
        await store("old_hit", message("k-old-hit", "kf:K:wmA", content="我要投诉12315", hits=hits))
        await store("old_staff", message("k-old-staff", "kf:K:wmA", sender="li", direction="staff"))
        await store("conv_held", message("k-conv-held", "kf:K:wmB"))
        await store(
            "staff_wrote", message("k-staff", "kf:K:wmC", sender="zhang", direction="staff")
        )
        await store("staff_conv", message("k-staff-conv", "kf:K:wmC"))
        await store("open_case", message("k-open", "kf:K:wmD"))
        gate = Gate()
        held = await gate.hold(writer)
        mixed = [
            asyncio.create_task(archive.store_inbound(message("k-mix-held", "kf:K:wmB"))),
            asyncio.create_task(archive.store_inbound(message("k-mix-gone", "kf:K:wmE"))),
        ]
        await queued(writer, 3)  # the gate and the two stores
        gate.release.set()
        await held
        ids["mix_held"], ids["mix_gone"] = [r.message_id for r in await asyncio.gather(*mixed)]
        when["t"] = new
        await store("new", message("k-new", "kf:K:wmA"))
        flag = NewFlag("k-old-hit", MessageFlag.RECALLED, "recall_msg", "kf:e1", old)
        await writer.run(lambda conn: record_flags(conn, [flag]))

        def cases(conn: Connection) -> None:
            conn.execute(
                insert(AlertRecord.__table__),
                [
                    _alert("al-closed", "kf:K:wmA", "resolved", old),
                    _alert("al-open", "kf:K:wmD", "open", old),
                ],
            )
            conn.execute(
                insert(AlertMessageLink.__table__),
                [
                    {"alert_id": "al-closed", "message_id": ids["old_hit"]},
                    {"alert_id": "al-open", "message_id": ids["open_case"]},
                ],
            )
            conn.execute(
                insert(CaseNoteRecord.__table__),
                {"alert_id": "al-closed", "author": "li.na", "at": old, "body": "已核实"},
            )
            conn.execute(
                insert(MediaRecord.__table__),
                {
                    "dedupe_key": "k-old-hit",
                    "fileid_hash": "f" * 64,
                    "sdkfileid": "sdk1",
                    "kind": "image",
                    "md5": "",
                    "announced_size": 0,
                    "filename": "",
                    "status": MediaStatus.STORED if media_sha else MediaStatus.PENDING,
                    "sha256": media_sha,
                    "size": len(MEDIA_BYTES),
                    "mime": "image/png",
                    "attempts": 1,
                    "error": "",
                    "created_at": old,
                    "stored_at": old,
                },
            )
            set_hold(
                conn, scope="conversation", value="kf:K:wmB", reason="诉讼", actor="admin", now=now
            )
            set_hold(conn, scope="staff", value="zhang", reason="调查", actor="admin", now=now)

        await writer.run(cases)
    return Seeded(ids, now, media_sha)


def message_ids(engine: Engine) -> set[int]:
    with engine.connect() as conn:
        return {int(r[0]) for r in conn.execute(select(MessageRecord.__table__.c.id))}
