"""Response values of the WeCom API client, and the client's logger (declared once, here).

Only responses where a model adds something get one; the rest return WeCom's parsed dict.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Self

__all__ = [
    "ExternalContact",
    "FollowUser",
    "Member",
    "SendResult",
    "ServiceState",
    "SyncResult",
    "check_bytes",
    "log",
]

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


def _str(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    return value if isinstance(value, str) else ""


def _int(data: Mapping[str, Any], name: str, default: int = 0) -> int:
    value = data.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


@dataclass(frozen=True, slots=True)
class Member:
    """A member (成员) as ``user/get`` answers (https://developer.work.weixin.qq.com/document/path/90196).

    Attributes:
        userid: The member's UserID (WeCom compares it ignoring case).
        name: 成员名称; "" when WeCom leaves it out.
        department: Ids of the departments the member belongs to.
        position: 职务, "" when none.
        status: 1 activated, 2 disabled, 4 not activated, 5 left the company (0: not given).
        raw: The whole answer (mobile, email... as far as the app may see them); not in repr.
    """

    userid: str
    name: str
    department: tuple[int, ...] = ()
    position: str = ""
    status: int = 0
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_response(cls, data: Mapping[str, Any]) -> Self:
        """Build from the parsed JSON answer."""
        departments = data.get("department")
        departments = departments if isinstance(departments, list) else []
        return cls(
            userid=_str(data, "userid"),
            name=_str(data, "name"),
            department=tuple(
                d for d in departments if isinstance(d, int) and not isinstance(d, bool)
            ),
            position=_str(data, "position"),
            status=_int(data, "status"),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class FollowUser:
    """A member who has the external contact as a customer (an item of ``follow_user``).

    Attributes:
        userid: The member's UserID.
        remark: The member's remark (备注) for the customer, "" when none.
        createtime: When the member added the customer (epoch seconds, 0 when not given).
    """

    userid: str
    remark: str = ""
    createtime: int = 0


@dataclass(frozen=True, slots=True)
class ExternalContact:
    """A customer as ``externalcontact/get`` answers
    (https://developer.work.weixin.qq.com/document/path/92114).

    Attributes:
        external_userid: The customer's id (``wm…``/``wo…``).
        name: WeChat nickname (type 1) or the WeCom user's name (type 2).
        type: 1 a WeChat user, 2 a WeCom user (of another company).
        corp_name: The company's short name, for a WeCom user only ("" otherwise).
        follow_users: The members who added the customer (the first page: up to 500).
        raw: The whole answer; not in repr.
    """

    external_userid: str
    name: str
    type: int = 1
    corp_name: str = ""
    follow_users: tuple[FollowUser, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def display_name(self) -> str:
        """The name as WeCom shows it in a chat: ``name@corp_name`` for a WeCom user, else
        ``name`` ("" when WeCom gave no name)."""
        if self.name and self.type == 2 and self.corp_name:
            return f"{self.name}@{self.corp_name}"
        return self.name

    @classmethod
    def from_response(cls, data: Mapping[str, Any]) -> Self:
        """Build from the parsed JSON answer."""
        contact = data.get("external_contact")
        contact = contact if isinstance(contact, Mapping) else {}
        follows = data.get("follow_user")
        return cls(
            external_userid=_str(contact, "external_userid"),
            name=_str(contact, "name"),
            type=_int(contact, "type", 1),
            corp_name=_str(contact, "corp_name"),
            follow_users=tuple(
                FollowUser(_str(f, "userid"), _str(f, "remark"), _int(f, "createtime"))
                for f in (follows if isinstance(follows, list) else ())
                if isinstance(f, Mapping)
            ),
            raw=dict(data),
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
