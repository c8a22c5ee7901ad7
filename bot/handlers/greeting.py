"""Greetings and "what can you do" get a short introduction; everything else is left to later rules."""

from __future__ import annotations

from bot.context import Context
from bot.filters import Keyword, Regex
from bot.router import Router
from wecom_sdk.messages import TextMessage
from wecom_sdk.replies import TextReply

__all__ = ["GREETING_REPLY", "router"]

GREETING_WORDS = ("你好", "您好", "在吗", "帮助", "菜单")
# ASCII greetings only as the whole message: "hi" must not fire inside "this" or "shipping".
GREETING_ASCII = r"(?i)^\s*(hi|hello|help)\s*[!.?！。？]*\s*$"
GREETING_REPLY = (
    "您好！我是智能助手，可以为您解答发货、退货、价格等问题；如需人工服务，请回复「人工」。"
)


def router() -> Router:
    """The greeting feature's router."""
    r = Router("greeting")

    @r.text(Keyword(*GREETING_WORDS) | Regex(GREETING_ASCII))
    async def greet(msg: TextMessage, ctx: Context) -> TextReply:
        return ctx.reply(GREETING_REPLY)

    return r
