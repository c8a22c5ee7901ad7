"""Group robot webhook: ``webhook/send?key=`` — the key is the credential, no access_token.

https://developer.work.weixin.qq.com/document/path/91770 (≤ 20 messages/min per robot).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from yarl import URL

from .caller import Caller
from .models import check_bytes

__all__ = ["RobotApi"]


class RobotApi:
    """``client.robot``: team-room alerts through a group robot; same errcode mapping and retries."""

    def __init__(self, client: Caller) -> None:
        self._client = client

    def _url(self, webhook_url_or_key: str) -> URL:
        if not webhook_url_or_key:
            raise ValueError("robot webhook URL or key is required")
        if webhook_url_or_key.startswith(("http://", "https://")):
            return URL(webhook_url_or_key)
        return self._client.url("webhook/send").with_query(key=webhook_url_or_key)

    async def send_text(
        self,
        webhook_url_or_key: str,
        content: str,
        mentioned_list: Sequence[str] = (),
        mentioned_mobile_list: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Post text (≤ 2048 bytes), mentioning userids or ``"@all"``.

        https://developer.work.weixin.qq.com/document/path/91770
        """
        text: dict[str, Any] = {"content": check_bytes(content, 2048, "robot text content")}
        if mentioned_list:
            text["mentioned_list"] = list(mentioned_list)
        if mentioned_mobile_list:
            text["mentioned_mobile_list"] = list(mentioned_mobile_list)
        body = {"msgtype": "text", "text": text}
        return await self._client.request(self._url(webhook_url_or_key), body, auth=False)

    async def send_markdown(self, webhook_url_or_key: str, content: str) -> dict[str, Any]:
        """Post markdown (≤ 4096 bytes; no mentions). https://developer.work.weixin.qq.com/document/path/91770"""
        body = {
            "msgtype": "markdown",
            "markdown": {"content": check_bytes(content, 4096, "robot markdown")},
        }
        return await self._client.request(self._url(webhook_url_or_key), body, auth=False)
