"""The conversation archive (会话内容存档) as a source of pages: the interface and its data.

WeCom serves archived staff chats only through a closed C library (``GetChatData``,
``DecryptData``, ``GetMediaData``; wecom-protocol.md §7). :class:`ArchiveSource` is that
library's surface, so the puller runs the same on the vendor library
(:mod:`wecom_sdk.msgaudit.vendor`) and on the fake (:mod:`wecom_sdk.msgaudit.fake`). Every method
BLOCKS (the vendor library does network I/O inside): call it from a thread.

The RSA step is not here: ``encrypt_random_key`` is decrypted by :mod:`wecom_sdk.msgaudit.keyring`
with our private key of the entry's ``publickey_ver``; its result goes to :meth:`decrypt_data`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from wecom_sdk.errors import archive_error

__all__ = [
    "MAX_LIMIT",
    "MEDIA_CHUNK_BYTES",
    "ArchiveSource",
    "ChatDataEntry",
    "MediaChunk",
    "parse_chat_data",
]

MAX_LIMIT = 1000
"""The most entries ``GetChatData`` returns per call."""

MEDIA_CHUNK_BYTES = 512 * 1024
"""``GetMediaData`` returns media in chunks of at most 512 KB."""


@dataclass(frozen=True, slots=True)
class ChatDataEntry:
    """One ``chatdata`` entry as ``GetChatData`` returns it (still encrypted)."""

    seq: int
    msgid: str
    publickey_ver: int
    encrypt_random_key: str
    encrypt_chat_msg: str


@dataclass(frozen=True, slots=True)
class MediaChunk:
    """One ``GetMediaData`` answer: the bytes, the index to pass next, whether it was the last."""

    data: bytes
    next_index: str
    is_finish: bool


class ArchiveSource(Protocol):
    """The archive SDK's calls (blocking). Failures raise :class:`wecom_sdk.errors.ArchiveError`
    with the SDK's return code (:func:`wecom_sdk.errors.archive_error`)."""

    def get_chat_data(self, seq: int, limit: int, timeout_s: int) -> list[ChatDataEntry]:
        """Entries after ``seq`` (0 = from the start), at most ``limit`` (1..1000), in seq order."""

    def decrypt_data(self, random_key: str, encrypt_chat_msg: str) -> str:
        """The message JSON of an entry, given its RSA-decrypted random key."""

    def get_media_data(self, sdkfileid: str, index: str, timeout_s: int) -> MediaChunk:
        """The next chunk of a media file; ``index`` is "" first, then the previous ``next_index``."""

    def close(self) -> None:
        """Release the library's handle (idempotent)."""


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


def parse_chat_data(text: str | bytes) -> list[ChatDataEntry]:
    """The entries of a ``GetChatData`` answer.

    A non-zero ``errcode`` raises its :class:`~wecom_sdk.errors.ArchiveError`; an answer that is
    not the documented object raises 10002. An entry lacking ``seq`` cannot be placed and raises
    10002 too (the page is retried, never skipped); other odd fields are kept as found (empty
    strings, version 0), so the record reaches quarantine with them rather than vanishing.
    """
    try:
        answer = json.loads(text, strict=False)
    except (ValueError, UnicodeDecodeError) as exc:
        raise archive_error(10002, "GetChatData answer is not JSON") from exc
    if not isinstance(answer, dict):
        raise archive_error(10002, "GetChatData answer is not an object")
    errcode = answer.get("errcode", 0)
    if errcode:
        raise archive_error(errcode if type(errcode) is int else 10002, "GetChatData")
    items = answer.get("chatdata", [])
    if not isinstance(items, list):
        raise archive_error(10002, "chatdata is not a list")
    entries = []
    for item in items:
        seq = _int(item.get("seq")) if isinstance(item, dict) else None
        if seq is None or seq < 0:
            raise archive_error(10002, "a chatdata entry has no integer seq")
        entries.append(
            ChatDataEntry(
                seq=seq,
                msgid=str(item.get("msgid") or ""),
                publickey_ver=_int(item.get("publickey_ver")) or 0,
                encrypt_random_key=str(item.get("encrypt_random_key") or ""),
                encrypt_chat_msg=str(item.get("encrypt_chat_msg") or ""),
            )
        )
    return entries
