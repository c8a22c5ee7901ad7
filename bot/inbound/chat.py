"""The pipeline's entry point for chat channels: 微信客服 (kf) pulls and the conversation archive.

Those channels do not arrive as app callbacks, and they know who wrote each message (customer,
staff, system). They hand a :class:`ChatMessage` to :func:`feed`, which runs the same stages as a
callback (dedupe, rules with the real author, alerts, durable archive) and reports the outcome; the
channel then answers through its own API (e.g. ``kf/send_msg``), never by a passive reply.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Config
from bot.inbound.chat_message import ChatMessage
from bot.inbound.context import ChannelFacts, Context, Services
from bot.inbound.pipeline import Pipeline
from bot.log import pipeline_log
from rules.models import Audience, Inspection

__all__ = ["DIRECTIONS", "ChatMessage", "ChatOutcome", "chat_facts", "feed"]

DIRECTIONS = {
    Audience.CUSTOMER: "customer",
    Audience.STAFF: "staff",
}
"""Archive direction of a message by its author; anything else is ``system``."""


@dataclass(frozen=True, slots=True)
class ChatOutcome:
    """What :func:`feed` did with one message."""

    #: False when the message was a repeat (already archived): do not answer it again.
    stored: bool
    message_id: int | None
    inspection: Inspection | None


def chat_facts(msg: ChatMessage) -> ChannelFacts:
    """What a chat channel knows about ``msg``; it answers through its own API, never passively."""
    return ChannelFacts(
        channel=msg.channel,
        raw=msg.raw,
        passive_reply=False,
        author=msg.author,
        direction=DIRECTIONS.get(msg.author, "system"),
        conversation_id=msg.conversation_id,
        customer_id=msg.customer_id,
        customer_name=msg.customer_name,
        staff_userid=msg.staff_userid,
        staff_name=msg.staff_name,
    )


async def feed(pipeline: Pipeline, config: Config, msg: ChatMessage) -> ChatOutcome:
    """Run ``msg`` through the pipeline; returns once it is durably archived (or was already).

    Raises:
        monitor.errors.StorageError: the archive failed; the caller must not advance its cursor.
    """
    ctx = Context(chat_facts(msg), Services(config, pipeline_log))
    await pipeline(msg, ctx)
    return ChatOutcome(ctx.newly_stored, ctx.message_id, ctx.inspection)
