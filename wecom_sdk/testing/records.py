"""What the WeCom emulator records: every API call it answers, and the kf messages it delivers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Call", "KfDelivery"]


def _ok() -> dict[str, Any]:
    return {"errcode": 0, "errmsg": "ok"}


@dataclass(frozen=True)
class Call:
    """One API call the emulator answered with WeCom's JSON.

    Attributes:
        path: The API path under ``/cgi-bin/``, e.g. ``"message/send"``.
        body: The JSON body (``{}`` when it was not a JSON object, and for ``gettoken``); for
            a GET endpoint (``user/get``...), its query parameters without the access_token.
        token: The access_token or robot key it carried (``""`` for ``gettoken``: the app secret
            is never kept).
        answer: The JSON answer, ``errcode`` and ``errmsg`` included.
        repeat: Answered ok but not delivered again, as WeCom does for the same JSON within
            ``duplicate_check_interval`` and for a kf ``msgid`` already delivered.
    """

    path: str
    body: dict[str, Any]
    token: str
    answer: dict[str, Any] = field(default_factory=_ok)
    repeat: bool = False

    @property
    def errcode(self) -> int:
        """The answer's errcode (0: accepted)."""
        return int(self.answer["errcode"])


@dataclass(frozen=True)
class KfDelivery:
    """A kf message the emulator delivered to a customer."""

    open_kfid: str
    touser: str
    msgid: str
    msgtype: str
    content: dict[str, Any]
    via: str  # "send_msg" or "send_msg_on_event"
    at: float

    @property
    def text(self) -> str:
        """The text content, or a menu's head."""
        return str(self.content.get("content") or self.content.get("head_content") or "")
