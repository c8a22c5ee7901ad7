"""Opening pulled entries: RSA for the random key, the SDK's DecryptData, the record parser.

Pure CPU and the SDK's own call, no I/O of ours: :func:`open_entries` runs a whole page in one
worker thread (the vendor library blocks; one hop per page, not per record). An entry that cannot
be opened becomes an :class:`Opened` with ``failure`` set and goes to quarantine: nothing pulled
is ever dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.msgaudit.store import QuarantineEntry
from wecom_sdk.errors import ArchiveError, ArchiveUnavailable
from wecom_sdk.messages.msgaudit import ArchiveRecord, parse_archive_record
from wecom_sdk.msgaudit import ArchiveSource, ChatDataEntry
from wecom_sdk.msgaudit.keyring import KeyRing

__all__ = ["Opened", "open_entries"]


@dataclass(frozen=True, slots=True)
class Opened:
    """One entry: its record, or why it could not be opened."""

    entry: ChatDataEntry
    record: ArchiveRecord | None = None
    failure: QuarantineEntry | None = None


def open_entry(entry: ChatDataEntry, keys: KeyRing, source: ArchiveSource) -> Opened:
    """Decrypt and parse one entry (blocking: the SDK call).

    Raises:
        ArchiveUnavailable: the SDK could not work right now (10001/10003): retry the page.
    """
    try:
        random_key = keys.random_key(entry.publickey_ver, entry.encrypt_random_key)
        text = source.decrypt_data(random_key, entry.encrypt_chat_msg)
        return Opened(entry, record=parse_archive_record(text))
    except ArchiveUnavailable:
        raise
    except ArchiveError as exc:
        return Opened(entry, failure=QuarantineEntry(entry, str(exc), exc.errcode or 0))


def open_entries(
    entries: Sequence[ChatDataEntry], keys: KeyRing, source: ArchiveSource
) -> list[Opened]:
    """:func:`open_entry` for each entry, in order."""
    return [open_entry(entry, keys, source) for entry in entries]
