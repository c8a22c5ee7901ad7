"""Conversation archive (会话内容存档) tables: the pull cursor, the quarantine, media files.

The archive puller (``bot.msgaudit``) writes them on the group-commit writer. The cursor row holds
``seq`` (the last one durably archived), the fencing token of the latest puller, the newest
``msgtime`` seen (the lag metric) and the key generation (bumped by ``msgaudit keys reload`` so
every worker reloads its private keys). A record that cannot be decrypted waits in
``msgaudit_quarantine`` with everything needed to retry it; it is never dropped. A media file
(image, voice, video, file, emotion) is one ``media_file`` row per message and ``sdkfileid``; its
bytes are stored by content (sha256) outside the database.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Text, UniqueConstraint
from sqlmodel import Field

from monitor.tables import TableModel, UTCDateTime

__all__ = [
    "MediaRecord",
    "MediaStatus",
    "MsgauditCursorRecord",
    "MsgauditQuarantineRecord",
]


class MsgauditCursorRecord(TableModel, table=True):
    """Where the archive pull stands (one row per archive source; ``source`` is ``"default"``)."""

    __tablename__ = "msgaudit_cursor"

    source: str = Field(primary_key=True, max_length=64)
    #: The highest seq whose page is durably archived (0: nothing yet). Never moves back.
    seq: int = Field(default=0, sa_type=BigInteger)
    #: Claimed (+1) by each puller; a cursor write needs the stored fence to still be its own.
    fence: int = 0
    #: The newest ``msgtime`` (ms) archived: the lag is now minus this.
    newest_msgtime: int = Field(default=0, sa_type=BigInteger)
    #: When a pull last reached the end of what WeCom holds (None: never). With ``newest_msgtime``
    #: it tells a quiet weekend (caught up, nothing new) from a puller falling behind.
    caught_up_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: Bumped by ``msgaudit keys reload``: workers reload their private keys when it changes.
    keys_generation: int = 0
    #: When the operators were last told the lag passed ``lag_alert_hours`` (None: not lagging).
    lag_alerted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class MsgauditQuarantineRecord(TableModel, table=True):
    """A pulled record that could not be decrypted, kept whole until keys let it through."""

    __tablename__ = "msgaudit_quarantine"

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(sa_type=BigInteger, unique=True)
    msgid: str = Field(sa_type=Text)
    publickey_ver: int = 0
    encrypt_random_key: str = Field(sa_type=Text)
    encrypt_chat_msg: str = Field(sa_type=Text)
    #: Why it failed, in words (no secret, no plaintext).
    reason: str = Field(sa_type=Text)
    #: The archive SDK's code: 10006 decrypt failed, 10007 no key, 10008 bad key, 10002 bad JSON.
    errcode: int = 0
    attempts: int = 1
    created_at: datetime = Field(sa_type=UTCDateTime)
    last_tried_at: datetime = Field(sa_type=UTCDateTime)
    #: Set once a retry archived it (the row stays: the quarantine is part of the record).
    released_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)


class MediaStatus:
    """Life of a ``media_file`` row (plain constants: stored as text)."""

    PENDING = "pending"
    """Known from its message, not yet downloaded (or a download failed and will be retried)."""
    STORED = "stored"
    """Downloaded, md5 verified, bytes stored under ``sha256``."""
    TOO_LARGE = "too_large"
    """Larger than ``[msgaudit] media_max_bytes``: not stored (the message still is)."""
    MD5_MISMATCH = "md5_mismatch"
    """The bytes did not match the message's md5sum: not stored, retried."""
    FAILED = "failed"
    """WeCom refused it for good (10005 bad fileid, 10010 expired)."""


class MediaRecord(TableModel, table=True):
    """One media file of an archived message."""

    __tablename__ = "media_file"
    __table_args__ = (
        UniqueConstraint("dedupe_key", "fileid_hash", name="uq_media_file"),
        Index("ix_media_file_status", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: Archive key of the message that carries it.
    dedupe_key: str = Field(max_length=128, index=True)
    #: sha256 hex of ``sdkfileid`` (which can be long): the unique key with ``dedupe_key``.
    fileid_hash: str = Field(max_length=64)
    sdkfileid: str = Field(sa_type=Text)
    #: image, voice, video, file, emotion (the message's type, or the part's inside mixed).
    kind: str = Field(max_length=32)
    #: The md5sum the message announced ("" when it gave none).
    md5: str = Field(default="", max_length=32)
    #: The size the message announced (bytes; 0 unknown).
    announced_size: int = Field(default=0, sa_type=BigInteger)
    filename: str = Field(default="", sa_type=Text)
    status: str = Field(default=MediaStatus.PENDING, max_length=16)
    #: Content address of the stored bytes (sha256 hex), once stored.
    sha256: str = Field(default="", max_length=64, index=True)
    size: int = Field(default=0, sa_type=BigInteger)
    mime: str = Field(default="", max_length=128)
    attempts: int = 0
    error: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime)
    stored_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
