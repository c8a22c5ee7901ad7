"""The local demo: a WeCom stand-in that records outbound calls when no secret is configured, the
``/sandbox/`` pages that show them, and ``run_bot.py simulate``.
"""

from __future__ import annotations

__all__: list[str] = []
