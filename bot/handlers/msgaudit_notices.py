"""``msgaudit_notify`` callbacks: tell the archive puller to pull, and answer at once.

The event carries nothing but "pull now" (wecom-protocol.md §7); it is archived like any other
event before this handler runs. Without a puller (``[msgaudit].enabled = false``) it is only
archived.
"""

from __future__ import annotations

from bot.handlers.router import Router
from bot.inbound.context import Context
from wecom_sdk.messages.callback import Message

__all__ = ["router"]


def router() -> Router:
    """The archive-notice feature's router."""
    r = Router("msgaudit_notices")

    @r.event("msgaudit_notify")
    async def pull_notice(msg: Message, ctx: Context) -> None:
        puller = ctx.services.msgaudit_puller
        if puller is None:
            ctx.log.info("msgaudit_notify archived; [msgaudit] pulling is off")
            return
        puller.notify()

    return r
