"""The conversation archive (会话内容存档): pages of staff chats from WeCom's archive SDK.

:mod:`.source` is the interface (:class:`ArchiveSource`) and its data; :mod:`.keys` decrypts each
record's ``encrypt_random_key`` with our private key of its ``publickey_ver``; :mod:`.vendor`
binds the vendor C library with ctypes; :mod:`.fake` is the file-fed stand-in of tests, the
sandbox and the demo (design.md §3 "Fake archive source").
"""

from .source import (
    MAX_LIMIT,
    MEDIA_CHUNK_BYTES,
    ArchiveSource,
    ChatDataEntry,
    MediaChunk,
    parse_chat_data,
)

__all__ = [
    "MAX_LIMIT",
    "MEDIA_CHUNK_BYTES",
    "ArchiveSource",
    "ChatDataEntry",
    "MediaChunk",
    "parse_chat_data",
]
