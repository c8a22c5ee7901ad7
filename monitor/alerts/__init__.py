"""Manager alerts: the pure policy (aggregation, escalation, clicks, rate limits), card rendering
and masking, the alert tables, the store effects that commit with a message, and the outbox worker
that delivers cards to WeCom.
"""

from __future__ import annotations

__all__: list[str] = []
