"""Monitor: the durable message archive (SQLModel), its engines and group-commit writer.

Alert policy, outbox delivery, the review web and the audit log are added by later issues.
"""

from __future__ import annotations

from monitor.archive import Archive, StoreResult
from monitor.db import create_schema, make_engine, normalize_url
from monitor.errors import MonitorError, SchemaMismatch, StorageError, WriterClosed
from monitor.models import ArchivedHit, HitRecord, InboundRecord, MessageRecord
from monitor.queries import ArchivedMessageHits, archived_texts, hits_of_message
from monitor.sandbox_log import SandboxCall, SandboxLog
from monitor.writer import BulkOp, GroupCommitWriter

__all__ = [
    "Archive",
    "ArchivedHit",
    "ArchivedMessageHits",
    "BulkOp",
    "GroupCommitWriter",
    "HitRecord",
    "InboundRecord",
    "MessageRecord",
    "MonitorError",
    "SandboxCall",
    "SandboxLog",
    "SchemaMismatch",
    "StorageError",
    "StoreResult",
    "WriterClosed",
    "archived_texts",
    "create_schema",
    "hits_of_message",
    "make_engine",
    "normalize_url",
]
