"""The pipeline's entry point for chat channels: 微信客服 (kf) pulls and the conversation archive.

Those channels do not arrive as app callbacks, and they know who wrote each message (customer,
staff, system). They hand a :class:`ChatMessage` to :func:`feed`, which runs the same stages as a
callback (dedupe, rules with the real author, alerts, durable archive) and reports the outcome; the
channel then answers through its own API (e.g. ``kf/send_msg``), never by a passive reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from bot.config import Config
from bot.inbound.chat_message import ChatMessage
from bot.inbound.context import ChannelFacts, Context, Services
from bot.inbound.pipeline import Pipeline
from bot.log import pipeline_log
from rules.models import Audience, Inspection

__all__ = [
    "CONVERSATIONS_AT_ONCE",
    "DIRECTIONS",
    "ChatMessage",
    "ChatOutcome",
    "chat_facts",
    "feed",
    "per_conversation",
]

CONVERSATIONS_AT_ONCE = 32
"""Conversations of a pulled page archived at once: each one's stores borrow shared connections
(Redis dedupe, the writer's queue), and a page of 1,000 items can hold hundreds of conversations
(well under redis-py's 100-connection pool)."""

_T = TypeVar("_T")

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


async def per_conversation(
    items: Iterable[_T],
    conversation: Callable[[_T], Hashable],
    handle: Callable[[_T], Awaitable[None]],
) -> None:
    """``handle`` every item: one conversation's items in order, conversations side by side
    (at most :data:`CONVERSATIONS_AT_ONCE`), so their stores share group commits.

    Raises:
        Exception: the first failure, as itself (one store failing stops the page).
    """
    by_chat: dict[Hashable, list[_T]] = {}
    for item in items:
        by_chat.setdefault(conversation(item), []).append(item)
    slots = asyncio.Semaphore(CONVERSATIONS_AT_ONCE)

    async def chat(chat_items: list[_T]) -> None:
        async with slots:
            for item in chat_items:
                await handle(item)

    try:
        async with asyncio.TaskGroup() as group:
            for chat_items in by_chat.values():
                group.create_task(chat(chat_items))
    except ExceptionGroup as failed:
        raise _first(failed) from failed


def _first(group: BaseExceptionGroup[Exception]) -> Exception:
    error = group.exceptions[0]
    return _first(error) if isinstance(error, BaseExceptionGroup) else error
