"""Monitor: the durable archive (:mod:`monitor.archive`) and manager alerts (:mod:`monitor.alerts`).

Nothing here calls WeCom except through ``wecom_sdk``; nothing imports ``bot``.
"""

from __future__ import annotations

__all__: list[str] = []
