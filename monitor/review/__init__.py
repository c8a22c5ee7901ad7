"""The compliance review web at ``[review].path``: reviewer accounts and sessions, the queue of
flagged conversations, the conversation page with its actions, and the audit log for admins.
"""

from __future__ import annotations

__all__: list[str] = []
