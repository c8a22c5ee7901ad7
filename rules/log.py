"""Named loggers of the rules package, declared in one place.

Message text is never logged above DEBUG (rule words and file names are fine).
"""

from __future__ import annotations

import logging

__all__ = ["rules_log"]

rules_log = logging.getLogger("sentinel.rules")
"""Loading, hot reload and watching of rule files."""
