"""Turn a handler's result into the HTTP answer body: a sealed passive reply, or nothing.

Only this module renders and encrypts replies (a ``str`` is coerced to a text reply, as wechatpy's
``create_reply`` does); ``bot.inbound.callback`` writes the response after the archive commit.
"""

from __future__ import annotations

from bot.handlers.router import HandlerResult
from wecom_sdk.crypto import MsgCrypto
from wecom_sdk.messages.callback import Message
from wecom_sdk.replies import TextReply, render_reply

__all__ = ["seal_reply"]


def seal_reply(
    result: HandlerResult, msg: Message, crypto: MsgCrypto, *, timestamp: str, nonce: str
) -> bytes | None:
    """Encrypt ``result`` as WeCom's passive-reply envelope, or ``None`` for "no reply".

    The reply goes back to the sender (``ToUserName`` = the member, ``FromUserName`` = the corp) and is
    sealed with the callback's own timestamp and nonce, as WeCom's official samples do.
    """
    if result is None or result == "":
        return None
    reply = TextReply(content=result) if isinstance(result, str) else result
    plain = render_reply(
        reply, to_user=msg.from_user, from_user=msg.to_user, create_time=int(timestamp)
    )
    return crypto.seal(plain, timestamp=timestamp, nonce=nonce).reply_xml()
