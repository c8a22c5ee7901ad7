"""Response values of the WeCom API client, and the client's logger (declared once, here).

Only responses where a model adds something get one; the rest return WeCom's parsed dict.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Self

__all__ = ["SendResult", "ServiceState", "SyncResult", "check_bytes", "log"]

# Tokens, secrets, robot keys and message text are never logged above DEBUG.
log = logging.getLogger("sentinel.wecom")


def _ids(value: object) -> tuple[str, ...]:
    """WeCom returns recipient lists as "a|b" strings (message/send) or JSON lists (update)."""
    if isinstance(value, str):
        return tuple(v for v in value.split("|") if v)
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return ()


@dataclass(frozen=True, slots=True)
class SendResult:
    """Answer of ``message/send`` (https://developer.work.weixin.qq.com/document/path/90236).

    Attributes:
        msgid: Id for ``message/recall``.
        response_code: Template cards only: code for ``update_template_card`` (72 h, single use).
        invaliduser: Recipients WeCom did not deliver to (lower-cased by WeCom).
    """

    msgid: str
    response_code: str | None = None
    invaliduser: tuple[str, ...] = ()
    invalidparty: tuple[str, ...] = ()
    invalidtag: tuple[str, ...] = ()
    unlicenseduser: tuple[str, ...] = ()

    @classmethod
    def from_response(cls, data: Mapping[str, Any]) -> Self:
        """Build from the parsed JSON answer."""
        return cls(
            msgid=str(data.get("msgid", "")),
            response_code=data.get("response_code") or None,
            invaliduser=_ids(data.get("invaliduser")),
            invalidparty=_ids(data.get("invalidparty")),
            invalidtag=_ids(data.get("invalidtag")),
            unlicenseduser=_ids(data.get("unlicenseduser")),
        )


@dataclass(frozen=True, slots=True)
class SyncResult:
    """One page of ``kf/sync_msg`` (https://developer.work.weixin.qq.com/document/path/94670).

    Attributes:
        next_cursor: Persist it, pass it to the next call.
        has_more: Keep pulling while true, even when ``msg_list`` is empty.
        msg_list: Items as WeCom sent them; event items lack top-level ``open_kfid``.
    """

    next_cursor: str
    has_more: bool
    msg_list: list[dict[str, Any]]

    @classmethod
    def from_response(cls, data: Mapping[str, Any]) -> Self:
        """Build from the parsed JSON answer."""
        items = data.get("msg_list") or []
        return cls(
            next_cursor=str(data.get("next_cursor", "")),
            has_more=bool(data.get("has_more", 0)),
            msg_list=[dict(i) for i in items if isinstance(i, Mapping)],
        )


class ServiceState(NamedTuple):
    """``kf/service_state/get`` answer; unpacks as ``state, servicer_userid``."""

    state: int
    servicer_userid: str


def check_bytes(value: str, limit: int, what: str) -> str:
    """Raise ValueError unless ``value`` is non-empty and at most ``limit`` bytes of UTF-8."""
    size = len(value.encode())
    if not value or size > limit:
        raise ValueError(f"{what} must be 1..{limit} bytes of UTF-8, got {size}")
    return value
