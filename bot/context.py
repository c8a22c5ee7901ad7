"""The one typed context handed to every pipeline stage and handler (no name-based injection)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from bot.config import Config
from rules.models import Hit, Inspection
from wecom_sdk.replies import TextReply

__all__ = ["Context"]


@dataclass(slots=True)
class Context:
    """What a handler may use besides the message itself."""

    #: The validated configuration of this process.
    config: Config
    #: Logger for handler code (``sentinel.pipeline``); never log chat text above DEBUG.
    log: logging.Logger
    #: Where the message came from: ``"app"`` (self-built app callback); later ``"kf"``, ``"msgaudit"``.
    channel: str = "app"
    #: The message exactly as received after decryption (XML, or JSON for kf), archived verbatim.
    raw: str = ""
    #: The archive row id once the message is stored (set by the archive stage).
    message_id: int | None = None
    #: Extra values returned by filters (a filter may return a dict instead of ``True``).
    data: dict[str, Any] = field(default_factory=dict)
    #: What the rules found in the message's text (set by the inspect stage; None for non-text).
    inspection: Inspection | None = None

    @property
    def hits(self) -> tuple[Hit, ...]:
        """The sensitive-word hits of this message (empty when not inspected)."""
        return self.inspection.hits if self.inspection is not None else ()

    def reply(self, text: str) -> TextReply:
        """Build a text reply; handlers ``return ctx.reply("...")``."""
        return TextReply(content=text)
