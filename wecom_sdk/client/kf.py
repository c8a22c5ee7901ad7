"""微信客服 (kf): pull messages, send messages, read and move session state.

https://developer.work.weixin.qq.com/document/path/94670 (sync_msg),
https://developer.work.weixin.qq.com/document/path/94677 (send_msg, send_msg_on_event),
https://developer.work.weixin.qq.com/document/path/94669 (service_state).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .caller import Caller
from .models import ServiceState, SyncResult, check_bytes

__all__ = ["KfApi"]

_MSGID = re.compile(r"[0-9a-zA-Z_-]{1,32}")


def _message(msgtype: str, content: Mapping[str, Any], msgid: str | None) -> dict[str, Any]:
    """The msgtype-keyed body shared by send_msg and send_msg_on_event, checked for WeCom's limits."""
    if not msgtype:
        raise ValueError("msgtype is required")
    if msgid is not None and not _MSGID.fullmatch(msgid):
        raise ValueError("msgid must be 1..32 chars of [0-9a-zA-Z_-]")
    if msgtype == "text":
        check_bytes(str(content.get("content", "")), 2048, "text content")
    if msgtype == "msgmenu" and len(content.get("list", ())) > 10:
        raise ValueError("msgmenu list holds at most 10 items")
    body: dict[str, Any] = {"msgtype": msgtype, msgtype: dict(content)}
    if msgid is not None:
        body["msgid"] = msgid
    return body


class KfApi:
    """``client.kf``: the 微信客服 API (the app must be allowed to call it)."""

    def __init__(self, client: Caller) -> None:
        self._client = client

    async def sync_msg(
        self,
        open_kfid: str,
        *,
        cursor: str | None = None,
        token: str | None = None,
        limit: int = 1000,
        voice_format: int = 0,
    ) -> SyncResult:
        """Pull one page; persist ``next_cursor``; keep pulling while ``has_more``.

        ``token`` is the callback's pull token (10 min); without it the call is strictly
        rate-limited. https://developer.work.weixin.qq.com/document/path/94670
        """
        if not open_kfid:
            raise ValueError("open_kfid is required")
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be 1..1000")
        body: dict[str, Any] = {
            "open_kfid": open_kfid,
            "limit": limit,
            "voice_format": voice_format,
        }
        if cursor:
            body["cursor"] = cursor
        if token:
            body["token"] = token
        return SyncResult.from_response(await self._client.call("kf/sync_msg", body))

    async def send_msg(
        self,
        touser: str,
        open_kfid: str,
        msgtype: str,
        content: Mapping[str, Any],
        *,
        msgid: str | None = None,
    ) -> str:
        """Send to a customer; returns the msgid (pass your own as an idempotency key).

        Success means accepted; a later ``msg_send_fail`` event reports delivery failure.
        https://developer.work.weixin.qq.com/document/path/94677
        """
        if not touser or not open_kfid:
            raise ValueError("touser and open_kfid are required")
        body = {"touser": touser, "open_kfid": open_kfid, **_message(msgtype, content, msgid)}
        data = await self._client.call("kf/send_msg", body)
        return str(data.get("msgid", msgid or ""))

    async def send_msg_on_event(
        self, code: str, msgtype: str, content: Mapping[str, Any], *, msgid: str | None = None
    ) -> str:
        """Send the one message an event code allows (welcome_code: 20 s); returns the msgid.

        https://developer.work.weixin.qq.com/document/path/95122
        """
        if not code:
            raise ValueError("code is required")
        if msgtype not in ("text", "msgmenu"):
            raise ValueError("send_msg_on_event takes msgtype text or msgmenu")
        data = await self._client.call(
            "kf/send_msg_on_event", {"code": code, **_message(msgtype, content, msgid)}
        )
        return str(data.get("msgid", msgid or ""))

    async def service_state_get(self, open_kfid: str, external_userid: str) -> ServiceState:
        """Session state (0 new, 1 API, 2 queued, 3 human, 4 ended) and its servicer.

        https://developer.work.weixin.qq.com/document/path/94669
        """
        body = {"open_kfid": open_kfid, "external_userid": external_userid}
        data = await self._client.call("kf/service_state/get", body)
        return ServiceState(int(data.get("service_state", 0)), str(data.get("servicer_userid", "")))

    async def service_state_trans(
        self,
        open_kfid: str,
        external_userid: str,
        service_state: int,
        servicer_userid: str | None = None,
    ) -> str:
        """Move the session; returns ``msg_code`` (for send_msg_on_event) or "" when none.

        https://developer.work.weixin.qq.com/document/path/94669
        """
        if service_state not in range(5):
            raise ValueError("service_state must be 0..4")
        if service_state == 3 and not servicer_userid:
            raise ValueError("servicer_userid is required to transfer to a servicer (state 3)")
        body: dict[str, Any] = {
            "open_kfid": open_kfid,
            "external_userid": external_userid,
            "service_state": service_state,
        }
        if servicer_userid:
            body["servicer_userid"] = servicer_userid
        data = await self._client.call("kf/service_state/trans", body)
        return str(data.get("msg_code", ""))
