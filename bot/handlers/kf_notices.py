"""``kf_msg_or_event`` callbacks: hand the pull notice to the kf puller and answer at once.

The callback carries only a pull token (10 min) and the kf account; the messages are pulled by
:class:`bot.kf.puller.KfPuller` in the background, after this callback has been answered (the
event itself is archived like any other before this handler runs). The puller comes with the
handler's services (``ctx.services.kf_puller``); without one (``[kf].enabled = false``) the
event is only archived.
"""

from __future__ import annotations

from bot.handlers.router import Router
from bot.inbound.context import Context
from wecom_sdk.messages.callback import KfMsgOrEvent, Message

__all__ = ["router"]


def router() -> Router:
    """The kf-events feature's router."""
    r = Router("kf_notices")

    @r.event("kf_msg_or_event")
    async def pull_notice(msg: Message, ctx: Context) -> None:
        if not isinstance(msg, KfMsgOrEvent):
            return
        puller = ctx.services.kf_puller
        if puller is None:
            ctx.log.info("kf_msg_or_event for %s archived; kf pulling is off", msg.open_kf_id)
            return
        puller.notify(msg.open_kf_id, msg.token)
        return  # an empty 200 at once; the pull runs in the background

    return r
