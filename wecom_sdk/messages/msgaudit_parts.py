"""The parts of composite archive records: mixed (图文混排) items, chat-record (聊天记录) items,
and the media references every record with a file hands to the media downloader.

A part's ``content`` is a JSON string of the part's own body (``{"content": "..."}`` for text,
``{"sdkfileid": ..., "md5sum": ..., "filesize": ...}`` for media). It is decoded leniently, when
read: a part that cannot be read gives no text and no media rather than losing its record, which
is archived raw either way. The records holding parts live in :mod:`wecom_sdk.messages.msgaudit`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import KfItemError
from .kf_fields import canonical_json, entries, path, read_int, read_str

__all__ = ["MEDIA_KINDS", "ArchivePart", "MediaRef", "media_ref", "read_parts"]

MEDIA_KINDS = frozenset({"image", "voice", "video", "file", "emotion"})
"""The message types (and part kinds) whose body names a file by ``sdkfileid``."""

# Parts nest (a chat record forwarded inside a chat record); each level is a JSON string inside
# a JSON string, so real records stay shallow. Deeper ones are not read further.
_MAX_DEPTH = 8


@dataclass(frozen=True, slots=True)
class MediaRef:
    """A file a record refers to, for ``GetMediaData``.

    Attributes:
        kind: image, voice, video, file or emotion.
        sdkfileid: WeCom's id of the file (long, opaque).
        md5sum: The md5 hex the record announces ("" when none).
        size: The size in bytes the record announces (0 when unknown).
        filename: The file's name (files only; "" else).
    """

    kind: str
    sdkfileid: str
    md5sum: str = ""
    size: int = 0
    filename: str = ""


def _size(body: Mapping[str, Any]) -> int:
    # Images, videos and files say filesize; voice says voice_size, emotion imagesize.
    for key in ("filesize", "voice_size", "imagesize"):
        value = body.get(key)
        if type(value) is int and value >= 0:
            return value
    return 0


def _str(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    return value if isinstance(value, str) else ""


def media_ref(kind: str, body: Mapping[str, Any]) -> MediaRef | None:
    """The media reference of a body of ``kind`` (leniently read), None when it names no file."""
    sdkfileid = _str(body, "sdkfileid")
    if kind not in MEDIA_KINDS or not sdkfileid:
        return None
    return MediaRef(
        kind=kind,
        sdkfileid=sdkfileid,
        md5sum=_str(body, "md5sum"),
        size=_size(body),
        filename=_str(body, "filename") if kind == "file" else "",
    )


def _kind(part_type: str) -> str:
    """``ChatRecordText`` (chat-record items) and ``text`` (mixed items) are both ``text``."""
    return part_type.removeprefix("ChatRecord").lower()


def _decode(content: str) -> Mapping[str, Any]:
    try:
        body = json.loads(content, strict=False)
    # RecursionError: a deeply nested string must not take the whole record down.
    except (ValueError, RecursionError):
        return {}
    return body if isinstance(body, dict) else {}


def _nested(body: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(kind, body) of each item of a nested mixed or chat-record body."""
    items = body.get("item")
    out: list[tuple[str, Mapping[str, Any]]] = []
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict) and isinstance(item.get("type"), str):
            content = item.get("content")
            inner = _decode(content) if isinstance(content, str) else content
            out.append((_kind(item["type"]), inner if isinstance(inner, dict) else {}))
    return out


def _text(kind: str, body: Mapping[str, Any], depth: int) -> str:
    if kind in ("text", "markdown"):
        return _str(body, "content")
    if kind in ("mixed", "chatrecord") and depth < _MAX_DEPTH:
        texts = (_text(k, b, depth + 1) for k, b in _nested(body))
        return "\n".join(t for t in texts if t)
    return ""


def _media(kind: str, body: Mapping[str, Any], depth: int) -> tuple[MediaRef, ...]:
    if kind in ("mixed", "chatrecord") and depth < _MAX_DEPTH:
        return tuple(m for k, b in _nested(body) for m in _media(k, b, depth + 1))
    ref = media_ref(kind, body)
    return (ref,) if ref else ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchivePart:
    """One item of a mixed message or a chat record.

    Attributes:
        type: As sent: ``text``, ``image``... in mixed messages; ``ChatRecordText``,
            ``ChatRecordImage``... in chat records.
        content: The part's body as a JSON string.
        msgtime: Chat records: when the original message was sent (0 in mixed messages).
        from_chatroom: Chat records: whether the original came from a group chat.
    """

    type: str
    content: str = ""
    msgtime: int = 0
    from_chatroom: bool = False

    @property
    def kind(self) -> str:
        """The type without chat records' ``ChatRecord`` prefix, lower case (``text``)."""
        return _kind(self.type)

    @property
    def body(self) -> Mapping[str, Any]:
        """``content`` decoded; {} when it is not a JSON object."""
        return _decode(self.content)

    @property
    def text(self) -> str:
        """The text of a text part (nested mixed and chat-record parts too), else ""."""
        return _text(self.kind, self.body, 0)

    @property
    def media(self) -> tuple[MediaRef, ...]:
        """The files of a media part (nested mixed and chat-record parts too)."""
        return _media(self.kind, self.body, 0)


def _read_content(d: Mapping[str, Any], key: str, where: str) -> str:
    """A part's content: a JSON string as WeCom sends it, or an object taken as its JSON."""
    value = d.get(key)
    if isinstance(value, Mapping):
        return canonical_json(value)
    return read_str(d, key, where)


def _read_flag(d: Mapping[str, Any], key: str, where: str) -> bool:
    """A JSON boolean (0/1 taken as one), False when absent."""
    value = d.get(key)
    if value is None:
        return False
    if not isinstance(value, bool | int):
        # The readers' shared error: parse_archive_record turns it into the archive's 10002.
        raise KfItemError(f"{path(where, key)} should be a boolean", field=path(where, key))
    return bool(value)


def read_parts(d: Mapping[str, Any], key: str, where: str) -> tuple[ArchivePart, ...]:
    """The parts of array ``key`` (``mixed.item``, ``chatrecord.item``)."""
    return tuple(
        ArchivePart(
            type=read_str(entry, "type", at),
            content=_read_content(entry, "content", at),
            msgtime=read_int(entry, "msgtime", at),
            from_chatroom=_read_flag(entry, "from_chatroom", at),
        )
        for at, entry in entries(d, key, where)
    )
