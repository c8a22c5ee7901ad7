"""通讯录 members: ``user/get`` reads one member, to name the staff in archived chats.

https://developer.work.weixin.qq.com/document/path/90196. A self-built app sees the members in
its visible range (可见范围); outside it WeCom answers 60011 (:class:`PermissionDenied`). An
unknown or empty userid answers 60111 (a plain :class:`ApiError`).
"""

from __future__ import annotations

from .caller import Caller
from .models import Member

__all__ = ["UserApi"]


class UserApi:
    """``client.user``: members of the company's directory (read only)."""

    def __init__(self, client: Caller) -> None:
        self._client = client

    async def get(self, userid: str) -> Member:
        """One member by UserID (GET ``user/get?userid=``).

        Raises ApiError 60111 when WeCom knows no such member, PermissionDenied (60011, 48002)
        when the app may not read it. https://developer.work.weixin.qq.com/document/path/90196
        """
        if not userid:
            raise ValueError("userid is required")
        url = self._client.url("user/get").with_query(userid=userid)
        return Member.from_response(await self._client.request(url, None, auth=True))
