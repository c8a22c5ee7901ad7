"""A bare greeting or a request for help gets a short introduction.

Only a message that is *just* a greeting ("你好", "在吗？", "Hello!") is answered: "你好，我的快递还没到"
is a question that the reply rules (or a person) should answer, not a greeting.
"""

from __future__ import annotations

from bot.context import Context
from bot.filters import Regex
from bot.router import Router
from wecom_sdk.messages import TextMessage
from wecom_sdk.replies import TextReply

__all__ = ["GREETING_PATTERN", "GREETING_REPLY", "router"]

GREETING_PATTERN = (
    r"(?i)^\s*(你好|您好|在吗|在不在|有人吗|hi|hello|help|帮助|菜单)"
    r"[\s!！。.?？~～呀啊呢]*$"
)
GREETING_REPLY = (
    "您好！我是智能助手，可以为您解答发货、退货、价格等问题；如需人工服务，请回复「人工」。"
)


def router() -> Router:
    """The greeting feature's router."""
    r = Router("greeting")

    @r.text(Regex(GREETING_PATTERN))
    async def greet(msg: TextMessage, ctx: Context) -> TextReply:
        return ctx.reply(GREETING_REPLY)

    return r
