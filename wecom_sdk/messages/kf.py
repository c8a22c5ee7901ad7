"""Typed, frozen models of 微信客服 (kf) items pulled with ``kf/sync_msg``.

One parser (:func:`parse_kf_item`) and one registry keyed by ``(msgtype, event_type)``, filled by
the :func:`_register` decorator, as in :mod:`wecom_sdk.messages.callback`. Each model field names its JSON
key and reader with :func:`_json`: message fields are read from the msgtype-keyed body
(``item["text"]``), event fields from ``item["event"]``. Unknown msgtypes become
:class:`KfUnknown`, unknown events :class:`KfUnknownEvent`; every model keeps the item in ``raw``
for archiving. Pure code, no I/O.
Format: https://developer.work.weixin.qq.com/document/path/94670 (sync_msg).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, Self, TypedDict, TypeVar

from ..errors import KfItemError

__all__ = [
    "KfAuthor",
    "KfBusinessCard",
    "KfEnterSession",
    "KfEvent",
    "KfFile",
    "KfImage",
    "KfItem",
    "KfLink",
    "KfLocation",
    "KfMedia",
    "KfMenuItem",
    "KfMergedItem",
    "KfMergedMsg",
    "KfMiniprogram",
    "KfMsgMenu",
    "KfMsgSendFail",
    "KfRecall",
    "KfServicerStatusChange",
    "KfSessionStatusChange",
    "KfText",
    "KfUnknown",
    "KfUnknownEvent",
    "KfVideo",
    "KfVoice",
    "parse_kf_item",
    "parse_kf_items",
]

# A msgid used verbatim in a dedupe key: short, printable ASCII, no spaces, so the key is safe in
# Redis, logs and the archive's key column. Anything else is hashed to a bounded, stable key.
_PLAIN_MSGID = re.compile(r"[!-~]{1,64}")
# Integers must fit the archive's BIGINT columns; Python would accept any size.
_INT64 = 2**63

_Reader = Callable[[Mapping[str, Any], str, str], Any]


def _canonical(value: object, *, strict: bool = False) -> str:
    """Canonical JSON: sorted keys, compact, UTF-8 kept; ``strict`` refuses NaN/Infinity."""
    return json.dumps(
        value,
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
        allow_nan=not strict,
        default=_mapping_as_dict,
    )


def _mapping_as_dict(value: object) -> dict[str, Any]:
    # json only encodes dicts; a read-only Mapping (MappingProxyType, ...) is still a JSON object.
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


# Readers take (mapping, key, dotted path of the mapping). JSON null counts as absent: it carries
# no data, and refusing it would drop a whole item over a field we would default anyway.


def _str(d: Mapping[str, Any], key: str, where: str = "") -> str:
    value = d.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise KfItemError(f"{_path(where, key)} should be a string", field=_path(where, key))
    return value


def _int(d: Mapping[str, Any], key: str, where: str = "") -> int:
    value = d.get(key)
    if value is None:
        return 0
    # bool is an int subclass, but JSON true/false is not a number.
    if isinstance(value, bool) or not isinstance(value, int):
        raise KfItemError(f"{_path(where, key)} should be an integer", field=_path(where, key))
    if not -_INT64 <= value < _INT64:
        raise KfItemError(f"{_path(where, key)} is out of range", field=_path(where, key))
    return value


def _float(d: Mapping[str, Any], key: str, where: str = "") -> float:
    value = d.get(key)
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise KfItemError(f"{_path(where, key)} should be a number", field=_path(where, key))
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        number = math.inf
    if not math.isfinite(number):
        raise KfItemError(f"{_path(where, key)} should be finite", field=_path(where, key))
    return number


def _object(d: Mapping[str, Any], key: str, where: str = "") -> Mapping[str, Any]:
    value = d.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise KfItemError(f"{_path(where, key)} should be an object", field=_path(where, key))
    return value


def _array(d: Mapping[str, Any], key: str, where: str = "") -> Sequence[Any]:
    value = d.get(key)
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise KfItemError(f"{_path(where, key)} should be an array", field=_path(where, key))
    return value


def _entries(d: Mapping[str, Any], key: str, where: str) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """The objects of array ``key``, each with its path (``msgmenu.list[2]``)."""
    for index, entry in enumerate(_array(d, key, where)):
        at = f"{_path(where, key)}[{index}]"
        if not isinstance(entry, Mapping):
            raise KfItemError(f"{at} should be an object", field=at)
        yield at, entry


def _json(key: str, read: _Reader = _str, default: Any = "", *, secret: bool = False) -> Any:
    """A model field read from JSON ``key`` by ``read``; ``default`` serves direct construction."""
    return field(default=default, repr=not secret, metadata={"json": key, "read": read})


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


class _Common(TypedDict):
    msgid: str
    open_kfid: str
    external_userid: str
    send_time: int
    origin: int
    servicer_userid: str
    msgtype: str
    raw: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class KfItem:
    """Fields common to every ``msg_list`` item.

    Attributes:
        msgid: WeCom's message id (always sent).
        open_kfid: The kf account; for events taken from ``event.open_kfid``.
        external_userid: The customer; for events taken from ``event.external_userid``.
        send_time: Unix seconds.
        origin: 3 customer, 4 system event, 5 servicer (see :attr:`author`).
        servicer_userid: The servicer (origin 5); for events taken from the event when present.
        msgtype: As sent.
        raw: The item as received, kept for archiving.
    """

    msgid: str
    msgtype: str
    open_kfid: str = ""
    external_userid: str = ""
    send_time: int = 0
    origin: int = 0
    servicer_userid: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, hash=False)

    @property
    def author(self) -> KfAuthor:
        """Who produced the item, from ``origin``."""
        return _AUTHORS.get(self.origin, KfAuthor.UNKNOWN)

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
        return _canonical(self.raw)

    @classmethod
    def _build(cls, common: _Common, body: Mapping[str, Any], where: str) -> Self:
        extra = {
            f.name: f.metadata["read"](body, f.metadata["json"], where)
            for f in fields(cls)
            if f.metadata
        }
        return cls(**common, **extra)


def _join(sep: str, *parts: str) -> str:
    """Join the non-empty parts, so a missing title or desc leaves no stray separator."""
    return sep.join(p for p in parts if p)


_K = TypeVar("_K", bound=type[KfItem])
_REGISTRY: dict[tuple[str, str], type[KfItem]] = {}


def _register(msgtype: str, event_type: str = "") -> Callable[[_K], _K]:
    """Register a model for a msgtype (and, for ``event``, an event_type)."""

    def add(cls: _K) -> _K:
        _REGISTRY[msgtype, event_type] = cls
        return cls

    return add


@_register("text")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfText(KfItem):
    """A text message; ``menu_id`` is set when the customer clicked a msgmenu option."""

    content: str = _json("content")
    menu_id: str = _json("menu_id")

    @property
    def text(self) -> str:
        return self.content


@dataclass(frozen=True, slots=True, kw_only=True)
class KfMedia(KfItem):
    """Base of image / voice / video / file: ``media_id`` for media/get (temporary, 3 days)."""

    media_id: str = _json("media_id")


@_register("image")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfImage(KfMedia):
    """An image (over 2 MB arrives as a text placeholder instead)."""


@_register("voice")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfVoice(KfMedia):
    """A voice message (AMR or SILK, per sync_msg's ``voice_format``)."""


@_register("video")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfVideo(KfMedia):
    """A video (over 10 MB arrives as a text placeholder instead)."""


@_register("file")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfFile(KfMedia):
    """A file (over 20 MB arrives as a text placeholder instead)."""


@_register("location")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfLocation(KfItem):
    """A shared location; ``text`` is "name address"."""

    latitude: float = _json("latitude", _float, 0.0)
    longitude: float = _json("longitude", _float, 0.0)
    name: str = _json("name")
    address: str = _json("address")

    @property
    def text(self) -> str:
        return _join(" ", self.name, self.address)


@_register("link")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfLink(KfItem):
    """A shared link; ``text`` is title and desc on two lines."""

    title: str = _json("title")
    desc: str = _json("desc")
    url: str = _json("url")
    pic_url: str = _json("pic_url")

    @property
    def text(self) -> str:
        return _join("\n", self.title, self.desc)


@_register("business_card")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfBusinessCard(KfItem):
    """A member's business card (名片)."""

    userid: str = _json("userid")


@_register("miniprogram")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfMiniprogram(KfItem):
    """A mini-program card; ``text`` is its title."""

    appid: str = _json("appid")
    title: str = _json("title")
    thumb_media_id: str = _json("thumb_media_id")
    pagepath: str = _json("pagepath")

    @property
    def text(self) -> str:
        return self.title


@dataclass(frozen=True, slots=True, kw_only=True)
class KfMenuItem:
    """One msgmenu option: ``{"type": "click", "click": {"id": ..., "content": ...}}``.

    Attributes:
        type: click, view, miniprogram or text (others are kept with empty fields).
        content: The visible label (all types).
        id: click: the menu_id echoed back in the customer's text message.
        url: view: the page opened.
        appid: miniprogram: the mini-program.
        pagepath: miniprogram: the page opened.
    """

    type: str
    content: str = ""
    id: str = ""
    url: str = ""
    appid: str = ""
    pagepath: str = ""


_MENU_TYPES = frozenset({"click", "view", "miniprogram", "text"})


def _menu_items(d: Mapping[str, Any], key: str, where: str) -> tuple[KfMenuItem, ...]:
    items = []
    for at, entry in _entries(d, key, where):
        kind = _str(entry, "type", at)
        # An unknown type's body may have any shape; only known bodies are read (and checked).
        body = _object(entry, kind, at) if kind in _MENU_TYPES else {}
        where_body = _path(at, kind)
        items.append(
            KfMenuItem(
                type=kind,
                content=_str(body, "content", where_body),
                id=_str(body, "id", where_body),
                url=_str(body, "url", where_body),
                appid=_str(body, "appid", where_body),
                pagepath=_str(body, "pagepath", where_body),
            )
        )
    return tuple(items)


@_register("msgmenu")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfMsgMenu(KfItem):
    """A menu message (菜单消息); ``text`` is head, every option's label and tail, one a line."""

    head_content: str = _json("head_content")
    items: tuple[KfMenuItem, ...] = _json("list", _menu_items, ())
    tail_content: str = _json("tail_content")

    @property
    def text(self) -> str:
        return _join("\n", self.head_content, *(i.content for i in self.items), self.tail_content)


@dataclass(frozen=True, slots=True, kw_only=True)
class KfMergedItem:
    """One message of a merged chat record (聊天记录).

    Attributes:
        send_time: Unix seconds of the original message.
        msgtype: Its msgtype.
        sender_name: Display name of its sender.
        msg_content: Its body as a JSON string, e.g. ``{"text":{"content":"..."}}``.
    """

    send_time: int = 0
    msgtype: str = ""
    sender_name: str = ""
    msg_content: str = ""

    @property
    def text(self) -> str:
        """The content of a text message, "" for other types or undecodable ``msg_content``."""
        try:
            body = json.loads(self.msg_content)
        # RecursionError: a deeply nested string must not take the whole item down.
        except (ValueError, RecursionError):
            return ""
        text = body.get("text") if isinstance(body, dict) else None
        content = text.get("content") if isinstance(text, dict) else None
        return content if isinstance(content, str) else ""


def _merged_items(d: Mapping[str, Any], key: str, where: str) -> tuple[KfMergedItem, ...]:
    return tuple(
        KfMergedItem(
            send_time=_int(entry, "send_time", at),
            msgtype=_str(entry, "msgtype", at),
            sender_name=_str(entry, "sender_name", at),
            msg_content=_str(entry, "msg_content", at),
        )
        for at, entry in _entries(d, key, where)
    )


@_register("merged_msg")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfMergedMsg(KfItem):
    """A forwarded chat record; ``text`` is the title and each text message, one a line."""

    title: str = _json("title")
    items: tuple[KfMergedItem, ...] = _json("item", _merged_items, ())

    @property
    def text(self) -> str:
        return _join("\n", self.title, *(i.text for i in self.items))


@dataclass(frozen=True, slots=True, kw_only=True)
class KfUnknown(KfItem):
    """Any msgtype without a model (channels, channels_shop_product, note, ...); read ``raw``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KfEvent(KfItem):
    """Base of every event item (msgtype ``event``, origin 4); ``text`` is always "".

    Attributes:
        event_type: ``event.event_type`` as sent.
    """

    event_type: str = _json("event_type")


@_register("event", "enter_session")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfEnterSession(KfEvent):
    """The customer entered the session (from a kf link, a scene QR code, a channel, ...).

    ``welcome_code`` is set when a welcome may be sent with send_msg_on_event (20 s, once).
    """

    scene: str = _json("scene")
    scene_param: str = _json("scene_param")
    welcome_code: str = _json("welcome_code", secret=True)


@_register("event", "msg_send_fail")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfMsgSendFail(KfEvent):
    """A message we sent was not delivered.

    ``fail_type``: 0 unknown, 1 account deleted, 2 app closed, 4 session expired (> 48 h),
    5 session closed, 6 over the 5-message limit, 7/8/9 channel or verification issues,
    10 customer refused.
    """

    fail_msgid: str = _json("fail_msgid")
    fail_type: int = _json("fail_type", _int, 0)


@_register("event", "servicer_status_change")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfServicerStatusChange(KfEvent):
    """A servicer (``servicer_userid``) changed status: 1 receiving, 2 stopped.

    ``stop_type`` (when stopped): 0 stopped receiving, 1 temporarily suspended.
    """

    status: int = _json("status", _int, 0)
    stop_type: int = _json("stop_type", _int, 0)


@_register("event", "session_status_change")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfSessionStatusChange(KfEvent):
    """A servicer changed the session: ``change_type`` 1 taken from pool, 2 transferred, 3 ended.

    ``msg_code`` allows one message through send_msg_on_event.
    """

    change_type: int = _json("change_type", _int, 0)
    old_servicer_userid: str = _json("old_servicer_userid")
    new_servicer_userid: str = _json("new_servicer_userid")
    msg_code: str = _json("msg_code", secret=True)


@_register("event", "user_recall_msg")
@_register("event", "servicer_recall_msg")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfRecall(KfEvent):
    """A message was recalled; ``event_type`` tells the customer's recall from a servicer's.

    Compliance keeps the original: mark ``recall_msgid`` recalled, never delete it.
    """

    recall_msgid: str = _json("recall_msgid")


@dataclass(frozen=True, slots=True, kw_only=True)
class KfUnknownEvent(KfEvent):
    """Any event_type without a model; read ``raw``."""


def parse_kf_item(item: object) -> KfItem:
    """Build the typed model of one ``msg_list`` item (already decoded from JSON).

    Missing or null optional fields take defaults ("" / 0); unknown msgtypes and event types are
    kept as :class:`KfUnknown` / :class:`KfUnknownEvent`.

    Raises:
        KfItemError: The item is not a JSON object, has no msgid, or a field has the wrong
            JSON type (strings, integers but not booleans, finite numbers, objects, arrays).
    """
    if not isinstance(item, Mapping):
        raise KfItemError("item is not a JSON object")
    if not all(isinstance(key, str) for key in item):
        raise KfItemError("item has a non-string key")
    try:
        # Checked once here so raw_json and dedupe_key never fail later, at archiving time.
        _canonical(item, strict=True)
    except (TypeError, ValueError, RecursionError) as exc:
        raise KfItemError("item is not plain JSON") from exc
    msgid = _str(item, "msgid")
    if not msgid:
        raise KfItemError("msgid is missing", field="msgid")
    msgtype = _str(item, "msgtype")
    event: Mapping[str, Any] = {}
    if msgtype == "event":
        event = _object(item, "event")
        model = _REGISTRY.get(("event", _str(event, "event_type", "event")), KfUnknownEvent)
        body = event
    else:
        model = _REGISTRY.get((msgtype, ""), KfUnknown)
        # An unknown msgtype's body may have any shape: it is kept raw, not read.
        body = {} if model is KfUnknown else _object(item, msgtype)

    def with_event_fallback(key: str) -> str:
        # Event items carry open_kfid / external_userid / servicer_userid inside the event only.
        return _str(item, key) or _str(event, key, "event")

    common = _Common(
        msgid=msgid,
        open_kfid=with_event_fallback("open_kfid"),
        external_userid=with_event_fallback("external_userid"),
        send_time=_int(item, "send_time"),
        origin=_int(item, "origin"),
        servicer_userid=with_event_fallback("servicer_userid"),
        msgtype=msgtype,
        raw=item,
    )
    return model._build(common, body, msgtype)


def parse_kf_items(
    items: Iterable[object],
) -> tuple[list[KfItem], list[tuple[int, KfItemError]]]:
    """Parse a ``msg_list`` page: the good items, and ``(index, error)`` for each bad one.

    One malformed item never loses the page; the caller archives the bad ones raw by index.
    """
    good: list[KfItem] = []
    bad: list[tuple[int, KfItemError]] = []
    for index, item in enumerate(items):
        try:
            good.append(parse_kf_item(item))
        except KfItemError as exc:
            bad.append((index, exc))
    return good, bad
