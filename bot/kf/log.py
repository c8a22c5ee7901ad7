"""The kf package's logger (``sentinel.kf``); chat text and pull tokens are never logged above DEBUG."""

from __future__ import annotations

import logging

__all__ = ["kf_log"]

kf_log = logging.getLogger("sentinel.kf")
