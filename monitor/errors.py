"""Exceptions raised by the monitor package.

```
MonitorError
├── StorageError        a database operation failed; the original error is ``__cause__``
│   └── WriterClosed    the group-commit writer is closed (shutting down) and takes no more work
└── SchemaMismatch      the database holds tables from another version of the archive schema
```

Messages never carry message data (SQLAlchemy's own errors embed SQL parameters, which may be chat
text), so they are safe to log and to show; look at ``__cause__`` when debugging.
"""

from __future__ import annotations

__all__ = ["MonitorError", "SchemaMismatch", "StorageError", "WriterClosed"]


class MonitorError(Exception):
    """Root of every error raised by ``monitor``."""


class StorageError(MonitorError):
    """The archive could not be written or read; answer WeCom 5xx so it retries."""


class WriterClosed(StorageError):
    """Work was submitted to a closed :class:`~monitor.archive.database.GroupCommitWriter`.

    A ``StorageError`` subclass so a callback arriving during shutdown is answered 5xx like any
    other storage failure (WeCom retries it against a live worker).
    """


class SchemaMismatch(MonitorError):
    """The database's schema is not one this version can migrate: a newer version upgraded it, or
    it was made before migrations by a version whose tables lack columns this one writes.

    Raised at start-up rather than letting every store fail (which would answer WeCom 5xx forever).
    """
