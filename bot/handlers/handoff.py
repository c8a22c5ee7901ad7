"""A member or customer asking for a person (人工) gets told one is coming.

The kf channel (issue: customer chat) will also move the conversation to the human pool; for app
messages the reply itself is the hand-off notice.
"""

from __future__ import annotations

from bot.context import Context
from bot.filters import Keyword
from bot.router import Router
from wecom_sdk.messages import TextMessage
from wecom_sdk.replies import TextReply

__all__ = ["HANDOFF_KEYWORDS", "HANDOFF_REPLY", "router"]

HANDOFF_KEYWORDS = ("人工", "转人工", "人工客服", "真人")
HANDOFF_REPLY = "好的，正在为您转接人工客服，请稍候，工作人员会尽快回复您。"


def router() -> Router:
    """The hand-off feature's router."""
    r = Router("handoff")

    @r.text(Keyword(*HANDOFF_KEYWORDS))
    async def handoff(msg: TextMessage, ctx: Context) -> TextReply:
        ctx.log.info("hand-off requested by %s", msg.from_user)
        return ctx.reply(HANDOFF_REPLY)

    return r
