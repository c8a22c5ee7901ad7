"""The base of every 微信客服 (kf) item model, its fallbacks, and the kf model registry.

:class:`KfItem` holds the fields every ``msg_list`` item has; :class:`KfEvent` is the base of
event items. :data:`KF_MODELS` maps ``msgtype`` (events: ``event.event_type``) to a model and
falls back to :class:`KfUnknown` / :class:`KfUnknownEvent`, which keep the item raw.
Format: https://developer.work.weixin.qq.com/document/path/94670 (sync_msg).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Self, TypedDict

from .base import Model, Registry, field_readers
from .kf_fields import canonical_json, json_field

__all__ = [
    "KF_MODELS",
    "KfAuthor",
    "KfCommon",
    "KfEvent",
    "KfItem",
    "KfUnknown",
    "KfUnknownEvent",
]

# A msgid used verbatim in a dedupe key: short, printable ASCII, no spaces, so the key is safe in
# Redis, logs and the archive's key column. Anything else is hashed to a bounded, stable key.
_PLAIN_MSGID = re.compile(r"[!-~]{1,64}")


class KfAuthor(StrEnum):
    """Who produced an item, from its ``origin``."""

    CUSTOMER = "customer"
    """origin 3: the WeChat customer."""
    SYSTEM = "system"
    """origin 4: a system-pushed event."""
    STAFF = "staff"
    """origin 5: a servicer, from the WeCom client."""
    UNKNOWN = "unknown"
    """Any other origin."""


_AUTHORS = {3: KfAuthor.CUSTOMER, 4: KfAuthor.SYSTEM, 5: KfAuthor.STAFF}


class KfCommon(TypedDict):
    """The :class:`KfItem` fields the parser reads from the item itself, for ``KfItem._build``."""

    msgid: str
    open_kfid: str
    external_userid: str
    send_time: int
    origin: int
    servicer_userid: str
    msgtype: str
    raw: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class KfItem(Model):
    """Fields common to every ``msg_list`` item.

    Attributes:
        msgid: WeCom's message id (always sent).
        open_kfid: The kf account; for events taken from ``event.open_kfid``.
        external_userid: The customer; for events taken from ``event.external_userid``.
        send_time: Unix seconds.
        origin: 3 customer, 4 system event, 5 servicer (see :attr:`author`).
        servicer_userid: The servicer (origin 5); for events taken from the event when present.
        msgtype: As sent.
    """

    msgid: str
    msgtype: str
    open_kfid: str = ""
    external_userid: str = ""
    send_time: int = 0
    origin: int = 0
    servicer_userid: str = ""

    @property
    def author(self) -> KfAuthor:
        """Who produced the item, from ``origin``."""
        return _AUTHORS.get(self.origin, KfAuthor.UNKNOWN)

    @property
    def msg_type(self) -> str:
        """``msgtype``, under the name every message model has."""
        return self.msgtype

    @property
    def create_time(self) -> int:
        """``send_time``, under the name every message model has."""
        return self.send_time

    @property
    def from_user(self) -> str:
        """Who wrote it: the customer's external_userid, the servicer's userid, else ""."""
        author = self.author
        if author is KfAuthor.CUSTOMER:
            return self.external_userid
        if author is KfAuthor.STAFF:
            return self.servicer_userid
        return ""

    @property
    def dedupe_key(self) -> str:
        """``kf:<msgid>`` for a plain msgid, else ``kfh:<sha256 hex>``; at most 68 chars.

        A plain msgid is 1..64 printable ASCII characters without spaces. Anything else (long,
        non-ASCII, control characters) is hashed so the key stays bounded and safe to store;
        an empty msgid (possible only by direct construction) hashes the canonical raw JSON.
        """
        if _PLAIN_MSGID.fullmatch(self.msgid):
            return f"kf:{self.msgid}"
        seed = self.msgid or self.raw_json
        # surrogatepass: a lone surrogate (a JSON "\ud800" escape) must not make hashing fail.
        return "kfh:" + hashlib.sha256(seed.encode("utf-8", "surrogatepass")).hexdigest()

    @property
    def text(self) -> str:
        """The text the rules engine inspects; "" when the item carries none."""
        return ""

    @property
    def raw_json(self) -> str:
        """``raw`` as canonical JSON (sorted keys, compact, UTF-8 kept) for archiving."""
        return canonical_json(self.raw)

    @classmethod
    def _build(cls, common: KfCommon, body: Mapping[str, Any], where: str) -> Self:
        extra = {name: read(body, key, where) for name, read, key in field_readers(cls)}
        return cls(**common, **extra)


@dataclass(frozen=True, slots=True, kw_only=True)
class KfUnknown(KfItem):
    """Any msgtype without a model (channels, channels_shop_product, note, ...); read ``raw``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KfEvent(KfItem):
    """Base of every event item (msgtype ``event``, origin 4); ``text`` is always "".

    Attributes:
        event_type: ``event.event_type`` as sent.
    """

    event_type: str = json_field("event_type")

    @property
    def event(self) -> str:
        """``event_type``, under the name every message model has."""
        return self.event_type


@dataclass(frozen=True, slots=True, kw_only=True)
class KfUnknownEvent(KfEvent):
    """Any event_type without a model; read ``raw``."""


KF_MODELS: Registry[KfItem] = Registry(KfUnknown, KfUnknownEvent)
"""The kf models by ``msgtype`` and, for events, ``event.event_type`` (case-sensitive)."""
