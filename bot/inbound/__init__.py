"""One inbound message's way: the callback route (verify -> decrypt -> parse), then the pipeline
(dedupe -> inspect -> alert effects -> durable archive), then the reply step. Chat channels (kf,
the conversation archive) enter the same pipeline through :func:`bot.inbound.chat.feed`.
"""

from __future__ import annotations

__all__: list[str] = []
