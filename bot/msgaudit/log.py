"""The archive puller's logger (``sentinel.msgaudit``); chat text and keys are never logged."""

from __future__ import annotations

import logging

__all__ = ["msgaudit_log"]

msgaudit_log = logging.getLogger("sentinel.msgaudit")
