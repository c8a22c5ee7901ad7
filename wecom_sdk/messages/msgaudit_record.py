"""The base of every conversation-archive (会话内容存档) record model, its fallback, and the
archive model registry.

:class:`ArchiveRecord` holds the fields every decrypted record has; :data:`ARCHIVE_MODELS` maps
``msgtype`` to a model (:mod:`wecom_sdk.messages.msgaudit`) and falls back to
:class:`ArchiveUnknown`, which keeps the record raw. :func:`is_external_id` tells a customer's id
from a member's. Format: https://developer.work.weixin.qq.com/document/path/91774.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self, TypedDict

from ..errors import KfItemError
from .base import Model, Registry, field_readers
from .kf_fields import canonical_json, path
from .msgaudit_parts import MediaRef

__all__ = [
    "ARCHIVE_MODELS",
    "SWITCH",
    "ArchiveCommon",
    "ArchiveRecord",
    "ArchiveUnknown",
    "body_key",
    "is_external_id",
    "key_of_msgid",
    "read_ids",
]

# As kf_item: a msgid used verbatim in a dedupe key is short printable ASCII without spaces, so
# the key is safe in Redis, logs and the archive's key column; anything else is hashed.
_PLAIN_MSGID = re.compile(r"[!-~]{1,64}")

SWITCH = "switch"
"""The registry key (and ``msgtype``) of ``action`` switch records, which carry no msgtype."""

_EXTERNAL_PREFIXES = ("wm", "wo", "wb")

# Bodies not always kept under their msgtype: markdown and news use "info", docmsg uses "doc",
# external_redpacket the red packet's "redpacket".
_BODY_KEYS = {
    "markdown": "info",
    "news": "info",
    "docmsg": "doc",
    "external_redpacket": "redpacket",
}


def body_key(record: Mapping[str, Any], msgtype: str) -> str:
    """The key of a record's body: its msgtype when present, else the type's known other key."""
    return msgtype if record.get(msgtype) is not None else _BODY_KEYS.get(msgtype, msgtype)


def is_external_id(userid: str) -> bool:
    """Whether a record's ``from`` (or a ``tolist`` entry) is outside the company.

    External contacts' ids start with ``wm`` (or ``wo`` for some WeChat users), group robots'
    with ``wb``; a member's userid is anything else (design.md §3: the sender decides the
    audience, external is the customer). Robots count as external: they are not staff. Member
    userids are chosen by the admin, so one named ``wm...`` would be misread; WeCom's own
    tools go by the same prefixes.
    """
    return userid.startswith(_EXTERNAL_PREFIXES)


def read_ids(d: Mapping[str, Any], key: str, where: str = "") -> tuple[str, ...]:
    """An array of strings (``tolist``), () when absent."""
    value = d.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise KfItemError(f"{path(where, key)} should be an array", field=path(where, key))
    for index, entry in enumerate(value):
        if not isinstance(entry, str):
            at = f"{path(where, key)}[{index}]"
            raise KfItemError(f"{at} should be a string", field=at)
    return tuple(value)


class ArchiveCommon(TypedDict):
    """The :class:`ArchiveRecord` fields read from the record itself, for ``_build``."""

    msgid: str
    action: str
    from_user: str
    tolist: tuple[str, ...]
    roomid: str
    msgtime: int
    msgtype: str
    raw: Mapping[str, Any]


def key_of_msgid(msgid: str) -> str:
    """The archive key of the record with this msgid (:attr:`ArchiveRecord.dedupe_key`): for a
    recall, the key of the message it takes back."""
    if _PLAIN_MSGID.fullmatch(msgid):
        return f"ma:{msgid}"
    # surrogatepass: a lone surrogate (a JSON "\ud800" escape) must not make hashing fail.
    return "mah:" + hashlib.sha256(msgid.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveRecord(Model):
    """Fields common to every decrypted archive record.

    Attributes:
        msgid: WeCom's message id (always sent; external chats' ids end in ``_external``).
        action: ``send``, ``recall`` (a revoke record) or ``switch`` (switching companies).
        from_user: The sender (JSON ``from``): a member's userid, or an external contact's or a
            robot's id (:func:`is_external_id`).
        tolist: The recipients' ids.
        roomid: The group chat's id; "" for a 1:1 chat.
        msgtime: When it was sent, **milliseconds** since the epoch (UTC).
        msgtype: As sent (``switch`` for switch records, which have none).
    """

    msgid: str
    msgtype: str
    action: str = ""
    from_user: str = ""
    tolist: tuple[str, ...] = ()
    roomid: str = ""
    msgtime: int = 0

    @property
    def msg_type(self) -> str:
        """``msgtype``, under the name every message model has."""
        return self.msgtype

    @property
    def create_time(self) -> int:
        """``msgtime`` in Unix seconds, under the name every message model has."""
        return self.msgtime // 1000

    @property
    def dedupe_key(self) -> str:
        """``ma:<msgid>`` for a plain msgid, else ``mah:<sha256 hex>``; at most 68 chars.

        As :attr:`wecom_sdk.messages.kf.KfItem.dedupe_key`: a plain msgid is 1..64 printable
        ASCII characters without spaces; anything else is hashed so the key stays bounded and
        safe to store (its own prefix keeps a hash from meeting a msgid that looks like one).
        """
        if self.msgid:
            return key_of_msgid(self.msgid)
        raw = self.raw_json.encode("utf-8", "surrogatepass")
        return "mah:" + hashlib.sha256(raw).hexdigest()

    @property
    def text(self) -> str:
        """The text the rules engine inspects; "" when the record carries none."""
        return ""

    @property
    def media(self) -> tuple[MediaRef, ...]:
        """The files the record refers to (see :func:`media_parts`)."""
        return ()

    @property
    def raw_json(self) -> str:
        """``raw`` as canonical JSON (sorted keys, compact, UTF-8 kept) for archiving."""
        return canonical_json(self.raw)

    @classmethod
    def _build(cls, common: ArchiveCommon, body: Mapping[str, Any], where: str) -> Self:
        extra = {name: read(body, key, where) for name, read, key in field_readers(cls)}
        return cls(**common, **extra)


# The text of the types kept raw, where it is obvious: the body's fields joined by newlines.
_OBVIOUS_TEXT: dict[str, tuple[str, ...]] = {
    "todo": ("title", "content"),
    "vote": ("votetitle",),
    "redpacket": ("wish",),
    "external_redpacket": ("wish",),
    "docmsg": ("title",),
    "calendar": ("title", "remarks"),
    "meeting": ("topic", "remarks"),
    "collect": ("title",),
    "sphfeed": ("feed_desc",),
}


def _strings(body: object, keys: Sequence[str]) -> list[str]:
    if not isinstance(body, dict):
        return []
    return [v for v in (body.get(k) for k in keys) if isinstance(v, str) and v]


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveUnknown(ArchiveRecord):
    """Any msgtype without a model (redpacket, news, todo, vote, meeting, doc, ...); read ``raw``.

    ``text`` is the obvious text of a few types, read leniently (a field of another shape gives
    nothing): todo title and content, vote title, red-packet wish, news titles and
    descriptions, doc, calendar and collect titles, meeting topic, channels-feed description.
    """

    @property
    def text(self) -> str:
        body = self.raw.get(body_key(self.raw, self.msgtype))
        if self.msgtype == "news":
            items = body.get("item") if isinstance(body, dict) else None
            if not isinstance(items, list):
                return ""
            return "\n".join(s for i in items for s in _strings(i, ("title", "description")))
        return "\n".join(_strings(body, _OBVIOUS_TEXT.get(self.msgtype, ())))


ARCHIVE_MODELS: Registry[ArchiveRecord] = Registry(ArchiveUnknown, ArchiveUnknown)
"""The archive models by ``msgtype`` (``switch`` for switch records); case-sensitive."""
