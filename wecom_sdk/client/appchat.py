"""App group chats: ``appchat/send`` posts to a group chat the app created.

https://developer.work.weixin.qq.com/document/path/90248 (send). Only chats created through
``appchat/create`` by this app can be posted to (else errcode 86001).
"""

from __future__ import annotations

from typing import Any

from .caller import Caller
from .models import check_bytes

__all__ = ["AppChatApi"]


class AppChatApi:
    """``client.appchat``: messages from the app into one of its group chats."""

    def __init__(self, client: Caller) -> None:
        self._client = client

    async def send_text(self, chatid: str, content: str, *, safe: int = 0) -> dict[str, Any]:
        """Post text (≤ 2048 bytes) to the group chat ``chatid``.

        https://developer.work.weixin.qq.com/document/path/90248
        """
        if not chatid:
            raise ValueError("chatid is required")
        body = {
            "chatid": chatid,
            "msgtype": "text",
            "text": {"content": check_bytes(content, 2048, "text content")},
            "safe": safe,
        }
        return await self._client.call("appchat/send", body)
