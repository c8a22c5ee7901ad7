"""The durable message archive: SQLModel tables and their migrations, engines, the group-commit
writer, the idempotent store, read queries and streaming export.
"""

from __future__ import annotations

from monitor.archive.database import make_engine, normalize_url
from monitor.archive.models import ArchivedHit, HitPart, HitRecord, InboundRecord, MessageRecord
from monitor.archive.queries import ArchivedMessageHits, archived_texts, hits_of_message
from monitor.archive.sandbox_log import SandboxCall, SandboxLog
from monitor.archive.schema import SchemaUpgrade, create_schema, upgrade_schema
from monitor.archive.store import Archive, StoreResult
from monitor.archive.writer import BulkOp, GroupCommitWriter
from monitor.errors import MonitorError, SchemaMismatch, StorageError, WriterClosed

__all__ = [
    "Archive",
    "ArchivedHit",
    "ArchivedMessageHits",
    "BulkOp",
    "GroupCommitWriter",
    "HitPart",
    "HitRecord",
    "InboundRecord",
    "MessageRecord",
    "MonitorError",
    "SandboxCall",
    "SandboxLog",
    "SchemaMismatch",
    "SchemaUpgrade",
    "StorageError",
    "StoreResult",
    "WriterClosed",
    "archived_texts",
    "create_schema",
    "hits_of_message",
    "make_engine",
    "normalize_url",
    "upgrade_schema",
]
