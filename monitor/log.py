"""Named loggers of the monitor package, declared in one place.

Never log message text (or SQL parameters, which contain it) above DEBUG.
"""

from __future__ import annotations

import logging

__all__ = ["archive_log", "chain_log", "storage_log"]

storage_log = logging.getLogger("sentinel.storage")
"""Engines and the group-commit writer: start/stop, failed batches."""

archive_log = logging.getLogger("sentinel.archive")
"""Archive operations (store, read)."""

chain_log = logging.getLogger("sentinel.chain")
"""The hash chains: daily anchors posted or failed."""
