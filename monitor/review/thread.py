"""A conversation as the review page shows it: the messages around each hit, spans marked,
and each message's media files (``monitor.archive.media_rows``).

Every matched span becomes a ``marked`` segment (each piece of a word split over messages is
marked in the message it was written in); the template wraps those in ``<mark>`` and
escapes every segment, so chat text is never markup. Long conversations show ``context``
messages before and after each hit, with the gaps between windows counted so the reviewer can ask
for more. Pure SQL reads on a Connection, plus pure helpers (:func:`segments`, :func:`windows`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, select

from monitor.archive.kf_models import MessageFlag, MessageFlagRecord
from monitor.archive.media_rows import MediaView, media_of_messages
from monitor.archive.models import HitRecord, MessageRecord
from rules.models import Severity

__all__ = [
    "MAX_SHOWN",
    "Gap",
    "Segment",
    "Thread",
    "ThreadHit",
    "ThreadMessage",
    "load_thread",
    "segments",
    "windows",
]

_MESSAGES: Table = MessageRecord.__table__
_HITS: Table = HitRecord.__table__
_FLAGS: Table = MessageFlagRecord.__table__

MAX_SHOWN = 2000
"""Most messages one page shows, whatever context is asked for."""

SPEAKERS = {
    "customer": "客户",
    "staff": "员工",
    "member": "成员",
    "bot": "机器人",
    "system": "系统",
}


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of a message's text; ``marked`` pieces matched a rule."""

    text: str
    marked: bool = False
    word: str = ""


@dataclass(frozen=True, slots=True)
class ThreadHit:
    word: str
    severity: Severity
    start: int
    end: int


TYPE_LABELS = {
    "image": "[图片]",
    "voice": "[语音]",
    "video": "[视频]",
    "file": "[文件]",
    "emotion": "[表情]",
    "card": "[名片]",
    "location": "[位置]",
    "link": "[链接]",
    "weapp": "[小程序]",
    "redpacket": "[红包]",
    "external_redpacket": "[红包]",
    "chatrecord": "[聊天记录]",
    "revoke": "撤回了一条消息",
    "agree": "客户同意了会话存档",
    "disagree": "客户拒绝了会话存档",
    "switch": "切换了企业",
    "meeting_voice_call": "[音频通话]",
    "voip_doc_share": "[共享文档]",
    "calendar": "[日程]",
    "meeting": "[会议]",
    "todo": "[待办]",
    "vote": "[投票]",
    "collect": "[填表]",
    "docmsg": "[在线文档]",
}
"""Words for messages without text (会话内容存档 types), as WeCom's own client shows them."""


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    """One archived message of the conversation."""

    id: int
    direction: str
    from_user: str
    msg_type: str
    at: datetime
    """When it was sent (WeCom's create time)."""
    segments: tuple[Segment, ...]
    hits: tuple[ThreadHit, ...]
    recalled: bool
    dedupe_key: str = ""
    """The archive key (what media rows point at)."""
    media: tuple[MediaView, ...] = ()
    """Its images, voice, video and files (stored or not)."""

    @property
    def speaker(self) -> str:
        return SPEAKERS.get(self.direction, "系统")

    @property
    def customer_id(self) -> str:
        """The author's id when a customer wrote it (what a pseudonymised page hides), else ""."""
        return self.from_user if self.direction == "customer" else ""

    @property
    def has_text(self) -> bool:
        return bool(self.segments)

    @property
    def type_label(self) -> str:
        """What a message without text was, in words ("[type]" for a type without a name)."""
        return TYPE_LABELS.get(self.msg_type, f"[{self.msg_type}]")


@dataclass(frozen=True, slots=True)
class Gap:
    """Messages left out between two windows (or at either end)."""

    count: int


@dataclass(frozen=True, slots=True)
class Thread:
    """The conversation page's messages: windows around hits, gaps between them."""

    conversation_id: str
    items: list[ThreadMessage | Gap]
    total: int
    """Messages in the conversation."""
    hit_messages: int
    context: int
    focus: int | None = None
    """The message asked for (``?at=``), shown with ``context`` messages around it."""

    @property
    def shown(self) -> int:
        return sum(1 for item in self.items if isinstance(item, ThreadMessage))

    @property
    def complete(self) -> bool:
        return self.shown == self.total

    @property
    def customer_ids(self) -> list[str]:
        """The customers who wrote the shown messages (their ids, each once)."""
        found = (i.customer_id for i in self.items if isinstance(i, ThreadMessage))
        return list(dict.fromkeys(c for c in found if c))


def segments(text: str, spans: Iterable[tuple[int, int, str]]) -> tuple[Segment, ...]:
    """``text`` cut into plain and marked pieces: one mark per matched span, overlapping spans
    merged into one (touching spans stay two marks, so every word is its own ``<mark>``)."""
    merged: list[list[Any]] = []
    for given_start, given_end, word in sorted(spans):
        start, end = max(0, given_start), min(len(text), given_end)
        if start >= end:
            continue
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            if word not in merged[-1][2]:
                merged[-1][2].append(word)
        else:
            merged.append([start, end, [word]])
    out: list[Segment] = []
    at = 0
    for start, end, words in merged:
        if start > at:
            out.append(Segment(text[at:start]))
        out.append(Segment(text[start:end], True, "、".join(words)))
        at = end
    if at < len(text):
        out.append(Segment(text[at:]))
    return tuple(out)


def windows(total: int, hit_positions: Sequence[int], context: int) -> list[tuple[int, int]]:
    """Index ranges ``[start, end)`` to show: ``context`` on each side of every hit, merged."""
    ranges: list[tuple[int, int]] = []
    for position in sorted(hit_positions):
        start, end = max(0, position - context), min(total, position + context + 1)
        if ranges and start <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], end))
        else:
            ranges.append((start, end))
    return ranges


def load_thread(
    conn: Connection, conversation_id: str, *, context: int, at: int | None = None
) -> Thread:
    """The conversation's messages around its hits (all of them with ``context`` >= their count),
    and around message ``at`` when it is one of the conversation's (a search result's link)."""
    order = (_MESSAGES.c.create_time, _MESSAGES.c.id)
    keyed = {
        row.dedupe_key: row.id
        for row in conn.execute(
            select(_MESSAGES.c.id, _MESSAGES.c.dedupe_key)
            .where(_MESSAGES.c.conversation_id == conversation_id)
            .order_by(*order)
        )
    }
    ids = list(keyed.values())
    hits_by_message: dict[int, list[ThreadHit]] = defaultdict(list)
    for hit in conn.execute(
        select(_HITS)
        .join(_MESSAGES, _HITS.c.message_id == _MESSAGES.c.id)
        .where(_MESSAGES.c.conversation_id == conversation_id)
        .order_by(_HITS.c.span_start)
    ):
        hits_by_message[hit.message_id].append(
            ThreadHit(hit.word, Severity(hit.severity), hit.span_start, hit.span_end)
        )
        for message_id, start, end in _earlier_parts(hit, keyed):
            hits_by_message[message_id].append(
                ThreadHit(hit.word, Severity(hit.severity), start, end)
            )
    positions = [i for i, message_id in enumerate(ids) if message_id in hits_by_message]
    focus = ids.index(at) if at in ids else None
    wanted = positions + ([focus] if focus is not None else [])
    ranges = windows(len(ids), wanted or [len(ids) - 1], context) if ids else []
    if focus is not None and sum(end - start for start, end in ranges) > MAX_SHOWN:
        ranges = windows(len(ids), [focus], min(context, MAX_SHOWN // 2 - 1))  # keep it in view
    shown_ids: list[int] = []
    for start, end in ranges:
        shown_ids.extend(ids[start:end])
    shown_ids = shown_ids[:MAX_SHOWN]
    rows = {
        row.id: row for row in conn.execute(select(_MESSAGES).where(_MESSAGES.c.id.in_(shown_ids)))
    }
    recalled = {
        row.dedupe_key
        for row in conn.execute(
            select(_FLAGS.c.dedupe_key).where(
                _FLAGS.c.dedupe_key.in_([r.dedupe_key for r in rows.values()]),
                _FLAGS.c.flag == MessageFlag.RECALLED,
            )
        )
    }
    media = media_of_messages(conn, (row.dedupe_key for row in rows.values()))
    items: list[ThreadMessage | Gap] = []
    at = 0
    for start, end in ranges:
        if start > at:
            items.append(Gap(start - at))
        for message_id in ids[start:end]:
            row = rows.get(message_id)
            if row is not None:
                key = row.dedupe_key
                items.append(
                    _message(row, hits_by_message[message_id], key in recalled, media.get(key, []))
                )
        at = end
    if ids and at < len(ids):
        items.append(Gap(len(ids) - at))
    focused = ids[focus] if focus is not None else None
    return Thread(conversation_id, items, len(ids), len(positions), context, focused)


def _message(
    row: Any, hits: list[ThreadHit], recalled: bool, media: list[MediaView]
) -> ThreadMessage:
    text = row.content or ""
    return ThreadMessage(
        id=row.id,
        direction=row.direction or ("customer" if row.channel == "app" else "system"),
        from_user=row.from_user,
        msg_type=row.msg_type,
        at=datetime.fromtimestamp(row.create_time, UTC),
        segments=segments(text, ((h.start, h.end, h.word) for h in hits)) if text else (),
        hits=tuple(hits),
        recalled=recalled,
        dedupe_key=row.dedupe_key,
        media=tuple(media),
    )


def _earlier_parts(hit: Any, keyed: dict[str, int]) -> list[tuple[int, int, int]]:
    """The pieces a split hit (``hit.parts``) has in the conversation's other messages, as
    ``(message id, start, end)``, so each piece is marked where it was written."""
    if not hit.parts:
        return []
    try:
        parts = json.loads(hit.parts)
    except ValueError:
        return []
    found = []
    for part in parts:
        message_id = keyed.get(part.get("dedupe_key"))
        if message_id is not None and message_id != hit.message_id:
            found.append((message_id, int(part["start"]), int(part["end"])))
    return found
