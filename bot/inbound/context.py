"""The one typed context handed to every pipeline stage and handler (no name-based injection).

A :class:`Context` joins three things:

- :class:`ChannelFacts`: what the channel knows about the message before the pipeline (who wrote
  it, in which conversation, whether the HTTP answer can carry a reply); immutable;
- :class:`Services`: what handlers may use besides the message (config, log, the kf puller);
  one per app;
- what the stages produce for this message: the inspection, the archive row id, the effects
  committed with it, whether it was newly stored, and the values filters extracted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.config import Config
from bot.inbound.chat_message import ChatMessage
from monitor.archive.models import HitPart, StoreEffect
from rules.models import Audience, Hit, Inspection
from wecom_sdk.messages.callback import Message
from wecom_sdk.replies import TextReply

__all__ = ["ArchiveNotifier", "ChannelFacts", "Context", "Inbound", "PullNotifier", "Services"]

Inbound = Message | ChatMessage
"""What the pipeline takes: a parsed app callback, or a message of a chat channel (kf, archive)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelFacts:
    """What the channel knows about one message before the pipeline sees it."""

    #: Where the message came from: ``"app"`` (self-built app callback), ``"kf"``, ``"msgaudit"``.
    channel: str
    #: The message exactly as received after decryption (XML, or JSON for kf), archived verbatim.
    raw: str
    #: Whether the channel answers in the HTTP response (a passive reply: app callbacks). Chat
    #: channels answer through their own API (e.g. ``kf/send_msg``), so no handler runs for them.
    passive_reply: bool
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
    staff_name: str = ""


class PullNotifier(Protocol):
    """Takes ``kf_msg_or_event`` pull notices (:class:`bot.kf.puller.KfPuller` is one)."""

    def notify(self, open_kfid: str, token: str = "") -> None:
        """The account has news: pull soon. Never blocks, never raises."""


class ArchiveNotifier(Protocol):
    """Takes ``msgaudit_notify`` notices (:class:`bot.msgaudit.puller.MsgauditPuller` is one)."""

    def notify(self) -> None:
        """The archive has new records: pull soon. Never blocks, never raises."""


@dataclass(frozen=True, slots=True)
class Services:
    """What handlers may use besides the message; built once per app."""

    #: The validated configuration of this process.
    config: Config
    #: Logger for handler code (``sentinel.pipeline``); never log chat text above DEBUG.
    log: logging.Logger
    #: The kf puller that takes pull notices; None when ``[kf].enabled`` is false.
    kf_puller: PullNotifier | None = None
    #: The conversation archive puller; None when ``[msgaudit].enabled`` is false.
    msgaudit_puller: ArchiveNotifier | None = None


@dataclass(slots=True)
class Context:
    """One message's channel facts, the app's services, and what the stages found out."""

    facts: ChannelFacts
    services: Services
    #: What the rules found in the message's text, with the reply rule that answers (None when
    #: it is cooling down for this customer); set by the inspect stage, None for non-text.
    inspection: Inspection | None = None
    #: The archive row id once the message is stored (set by the archive stage).
    message_id: int | None = None
    #: Writes that commit with the message (alert intake, card clicks); set by the alert stage.
    effects: tuple[StoreEffect, ...] = ()
    #: True once the archive stage stored the message as new (False for a repeat).
    newly_stored: bool = False
    #: Called once the message is newly stored, before the handlers (e.g. wake the outbox worker).
    after_store: list[Callable[[], None]] = field(default_factory=list)
    #: Extra values returned by filters (a filter may return a dict instead of ``True``).
    data: dict[str, Any] = field(default_factory=dict)
    #: The pieces of each split hit among ``hits`` (a word spread over the sender's recent
    #: messages, completed by this one), oldest first; set by the split stage.
    hit_parts: dict[Hit, tuple[HitPart, ...]] = field(default_factory=dict)

    @property
    def config(self) -> Config:
        """The validated configuration of this process."""
        return self.services.config

    @property
    def log(self) -> logging.Logger:
        """Logger for handler code; never log chat text above DEBUG."""
        return self.services.log

    @property
    def hits(self) -> tuple[Hit, ...]:
        """The sensitive-word hits of this message (empty when not inspected)."""
        return self.inspection.hits if self.inspection is not None else ()

    def reply(self, text: str) -> TextReply:
        """Build a text reply; handlers ``return ctx.reply("...")``."""
        return TextReply(content=text)
