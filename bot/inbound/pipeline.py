"""The inbound pipeline: middleware stages around the router, in one declared order.

Every stage has one signature, ``async def __call__(self, handler, msg, ctx)``, and calls ``handler``
to continue (aiogram's onion). The order is written once, in ``build_pipeline``:

    dedupe -> inspect (rules, reply cooldown) -> split window -> alerts -> archive (awaited
    group commit) -> router

The split-window stage (``bot.inbound.split_window``, when ``[rules]`` turns it on) adds the
hits of a word spread over the sender's last few messages to the inspection, so they are alerted
and archived with the message that completed the word.

The alert stage only attaches store effects (alert intake, card clicks) that the archive commits
in the message's own transaction, so an acknowledged message always has its alert persisted.

So a handler only ever runs for a message that is durably stored with its hits (the design's
no-data-loss rule), and a WeCom retry of a stored message is dropped before it is inspected again.
Handlers run only for channels that answer with a passive reply (``ChannelFacts.passive_reply``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import Protocol

from bot.handlers.router import UNHANDLED, HandlerResult, Router
from bot.inbound.context import Context, Inbound
from bot.inbound.cooldowns import ReplyCooldowns
from bot.inbound.dedupe import DedupeStore
from bot.log import pipeline_log
from bot.web.metrics import BotMetrics
from monitor.archive import Archive, ArchivedHit, InboundRecord
from rules.engine import RuleEngine

__all__ = [
    "ArchiveStage",
    "DedupeStage",
    "Inbound",
    "InspectStage",
    "Middleware",
    "NextHandler",
    "Pipeline",
    "build_pipeline",
    "record_from_message",
]

NextHandler = Callable[[Inbound, Context], Awaitable[HandlerResult]]


class Middleware(Protocol):
    """One pipeline stage."""

    async def __call__(self, handler: NextHandler, msg: Inbound, ctx: Context) -> HandlerResult:
        """Do this stage's work and call ``handler`` to continue (or not)."""


def record_from_message(msg: Inbound, ctx: Context) -> InboundRecord:
    """The archive row for a parsed WeCom message and the raw text it was parsed from."""
    facts = ctx.facts
    return InboundRecord(
        dedupe_key=msg.dedupe_key,
        channel=facts.channel,
        msg_type=msg.msg_type,
        event=msg.event,
        from_user=msg.from_user,
        to_user=msg.to_user,
        agent_id=msg.agent_id,
        create_time=msg.create_time,
        content=msg.text,
        raw=facts.raw,
        rules_version=ctx.inspection.rules_version if ctx.inspection is not None else None,
        conversation_id=facts.conversation_id or None,
        direction=facts.direction,
        effects=ctx.effects,
        hits=tuple(
            ArchivedHit(
                word=h.word,
                group=h.group,
                severity=int(h.severity),
                start=h.start,
                end=h.end,
                via=h.via,
                parts=ctx.hit_parts.get(h, ()),
            )
            for h in ctx.hits
        ),
    )


class DedupeStage:
    """Drop WeCom's retries of a message that is already stored.

    The key is remembered by ``ArchiveStage`` only after the commit, so a retry of a message whose store
    failed goes through. When the dedupe store itself fails (Redis down), the message goes on: the
    archive's unique key still makes the store idempotent.
    """

    def __init__(self, store: DedupeStore, metrics: BotMetrics) -> None:
        self.store = store
        self.metrics = metrics

    async def __call__(self, handler: NextHandler, msg: Inbound, ctx: Context) -> HandlerResult:
        try:
            seen = await self.store.seen(msg.dedupe_key)
        except Exception as exc:  # a shared-state outage must not block intake
            pipeline_log.warning("dedupe lookup failed (%s); relying on the archive key", exc)
            seen = False
        if seen:
            self.metrics.dedupe_hits.inc()
            pipeline_log.info("dropped WeCom retry of %s", msg.dedupe_key)
            return None
        return await handler(msg, ctx)


class InspectStage:
    """Run the rules over the message's text: hits (stored with it) and the reply decision.

    The audience is the channel's ``author``: app messages come from members writing to the app,
    so every group applies (``Audience.ANY``); chat channels pass the real author (customer or
    servicer). On a channel that answers passively, a chosen reply rule that is cooling down for
    the customer is dropped from the inspection (one cooldown lookup, only for a rule with
    ``cooldown_s > 0``); chat channels decide their replies themselves (``bot.kf.plan``).
    """

    def __init__(self, rules: RuleEngine, cooldowns: ReplyCooldowns) -> None:
        self.rules = rules
        self.cooldowns = cooldowns

    async def __call__(self, handler: NextHandler, msg: Inbound, ctx: Context) -> HandlerResult:
        text = msg.text
        if text:
            try:
                # The engine reads its current rule version once, so one message's hits never
                # mix two versions even while a reload swaps them.
                inspection = self.rules.inspect(text, ctx.facts.author)
            except Exception:
                # A rules bug must not lose the message: store it uninspected (rules_version
                # stays empty, so a backtest can find it) rather than fail every WeCom retry.
                pipeline_log.exception("rules inspection failed for %s", msg.dedupe_key)
            else:
                reply = inspection.reply
                if (
                    reply is not None
                    and reply.cooldown_s > 0
                    and ctx.facts.passive_reply
                    and not await self.cooldowns.take(ctx.facts.customer_id or msg.from_user, reply)
                ):
                    inspection = replace(inspection, reply=None)
                ctx.inspection = inspection
        return await handler(msg, ctx)


class ArchiveStage:
    """Store the message durably (group commit) before anything else happens to it."""

    def __init__(self, archive: Archive, dedupe: DedupeStore, metrics: BotMetrics) -> None:
        self.archive = archive
        self.dedupe = dedupe
        self.metrics = metrics

    async def __call__(self, handler: NextHandler, msg: Inbound, ctx: Context) -> HandlerResult:
        # A StorageError propagates: the callback answers 5xx and WeCom retries.
        result = await self.archive.store_inbound(record_from_message(msg, ctx))
        ctx.message_id = result.message_id
        try:
            await self.dedupe.remember(msg.dedupe_key)
        except Exception as exc:
            pipeline_log.warning("dedupe remember failed (%s); message is stored", exc)
        if not result.inserted:
            # Stored by an earlier delivery whose answer WeCom did not get: do not handle it twice.
            self.metrics.dedupe_hits.inc()
            return None
        ctx.newly_stored = True
        for callback in ctx.after_store:
            callback()
        return await handler(msg, ctx)


class Pipeline:
    """The composed stages plus the router at the centre."""

    def __init__(
        self, stages: Sequence[Middleware], router: Router, *, handler_timeout_s: float = 3.0
    ) -> None:
        self.stages = tuple(stages)
        self.router = router
        self.handler_timeout_s = handler_timeout_s
        chain: NextHandler = self._route
        for stage in reversed(self.stages):
            chain = partial(stage, chain)
        self._chain = chain

    async def _route(self, msg: Inbound, ctx: Context) -> HandlerResult:
        # The message is already stored here: a slow or failing handler costs the reply, never data.
        if not ctx.facts.passive_reply:
            return None  # the channel answers through its own API, not in the HTTP response
        try:
            async with asyncio.timeout(self.handler_timeout_s):
                result = await self.router.dispatch(msg, ctx)
        except TimeoutError:
            pipeline_log.warning("handler for %s timed out; answering without reply", msg.msg_type)
            return None
        except Exception:
            pipeline_log.exception("handler for %s failed; answering without reply", msg.msg_type)
            return None
        return None if result is UNHANDLED else result  # type: ignore[return-value]

    async def __call__(self, msg: Inbound, ctx: Context) -> HandlerResult:
        """Run ``msg`` through every stage and the router."""
        return await self._chain(msg, ctx)


def build_pipeline(
    *,
    archive: Archive,
    dedupe: DedupeStore,
    rules: RuleEngine,
    cooldowns: ReplyCooldowns,
    router: Router,
    metrics: BotMetrics,
    alerts: Middleware | None = None,
    split: Middleware | None = None,
) -> Pipeline:
    """The stage order, written once."""
    stages: list[Middleware] = [DedupeStage(dedupe, metrics), InspectStage(rules, cooldowns)]
    if split is not None:
        stages.append(split)
    if alerts is not None:
        stages.append(alerts)
    stages.append(ArchiveStage(archive, dedupe, metrics))
    return Pipeline(stages, router)
