"""The one typed context handed to every pipeline stage and handler (no name-based injection)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.config import Config
from monitor.archive.models import StoreEffect
from rules.models import Audience, Hit, Inspection
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
    #: Who wrote it, for the rules' audiences: app members are ``ANY`` (every group applies);
    #: chat channels set ``CUSTOMER`` or ``STAFF``.
    author: Audience = Audience.ANY
    #: Archive direction: ``member`` (app), ``customer``, ``staff``, ``system`` or ``bot``.
    direction: str = "member"
    #: The chat it belongs to (``app:<userid>``, ``kf:<open_kfid>:<external_userid>``).
    conversation_id: str = ""
    #: The customer of the conversation (external_userid; the member's userid on the app channel).
    customer_id: str = ""
    customer_name: str = ""
    #: The staff member of the conversation (kf servicer), when known.
    staff_userid: str = ""
    #: Writes that commit with the message (alert intake, card clicks); set by the alert stage.
    effects: tuple[StoreEffect, ...] = ()
    #: Called once the message is newly stored (e.g. wake the outbox worker).
    after_store: list[Callable[[], None]] = field(default_factory=list)

    @property
    def hits(self) -> tuple[Hit, ...]:
        """The sensitive-word hits of this message (empty when not inspected)."""
        return self.inspection.hits if self.inspection is not None else ()

    def reply(self, text: str) -> TextReply:
        """Build a text reply; handlers ``return ctx.reply("...")``."""
        return TextReply(content=text)
