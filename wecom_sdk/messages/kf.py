"""Typed, frozen models of 微信客服 (kf) items pulled with ``kf/sync_msg``, and their parser.

One parser (:func:`parse_kf_item`) and one :class:`~wecom_sdk.messages.base.Registry`,
:data:`KF_MODELS`, keyed by ``msgtype`` and, for events, ``event.event_type``, as callbacks are
in :mod:`wecom_sdk.messages.callback`. Each model field names its JSON key and reader with
:func:`~wecom_sdk.messages.kf_fields.json_field`: message fields are read from the msgtype-keyed
body (``item["text"]``), event fields (:mod:`.kf_events`) from ``item["event"]``. Unknown
msgtypes become :class:`KfUnknown`, unknown events :class:`KfUnknownEvent`; every model keeps
the item in ``raw`` for archiving. Pure code, no I/O. Every kf name is importable from here.
Format: https://developer.work.weixin.qq.com/document/path/94670 (sync_msg).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import KfItemError
from .base import EVENT
from .kf_events import (
    KfEnterSession,
    KfMsgSendFail,
    KfRecall,
    KfServicerStatusChange,
    KfSessionStatusChange,
)
from .kf_fields import canonical_json, json_field, read_float, read_int, read_object, read_str
from .kf_item import KF_MODELS, KfAuthor, KfCommon, KfEvent, KfItem, KfUnknown, KfUnknownEvent
from .kf_parts import KfMenuItem, KfMergedItem, read_menu_items, read_merged_items

__all__ = [
    "KF_MODELS",
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


def _join(sep: str, *parts: str) -> str:
    """Join the non-empty parts, so a missing title or desc leaves no stray separator."""
    return sep.join(p for p in parts if p)


@KF_MODELS.register("text")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfText(KfItem):
    """A text message; ``menu_id`` is set when the customer clicked a msgmenu option."""

    content: str = json_field("content")
    menu_id: str = json_field("menu_id")

    @property
    def text(self) -> str:
        return self.content


@dataclass(frozen=True, slots=True, kw_only=True)
class KfMedia(KfItem):
    """Base of image / voice / video / file: ``media_id`` for media/get (temporary, 3 days)."""

    media_id: str = json_field("media_id")


@KF_MODELS.register("image")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfImage(KfMedia):
    """An image (over 2 MB arrives as a text placeholder instead)."""


@KF_MODELS.register("voice")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfVoice(KfMedia):
    """A voice message (AMR or SILK, per sync_msg's ``voice_format``)."""


@KF_MODELS.register("video")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfVideo(KfMedia):
    """A video (over 10 MB arrives as a text placeholder instead)."""


@KF_MODELS.register("file")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfFile(KfMedia):
    """A file (over 20 MB arrives as a text placeholder instead)."""


@KF_MODELS.register("location")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfLocation(KfItem):
    """A shared location; ``text`` is "name address"."""

    latitude: float = json_field("latitude", read_float, 0.0)
    longitude: float = json_field("longitude", read_float, 0.0)
    name: str = json_field("name")
    address: str = json_field("address")

    @property
    def text(self) -> str:
        return _join(" ", self.name, self.address)


@KF_MODELS.register("link")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfLink(KfItem):
    """A shared link; ``text`` is title and desc on two lines."""

    title: str = json_field("title")
    desc: str = json_field("desc")
    url: str = json_field("url")
    pic_url: str = json_field("pic_url")

    @property
    def text(self) -> str:
        return _join("\n", self.title, self.desc)


@KF_MODELS.register("business_card")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfBusinessCard(KfItem):
    """A member's business card (名片)."""

    userid: str = json_field("userid")


@KF_MODELS.register("miniprogram")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfMiniprogram(KfItem):
    """A mini-program card; ``text`` is its title."""

    appid: str = json_field("appid")
    title: str = json_field("title")
    thumb_media_id: str = json_field("thumb_media_id")
    pagepath: str = json_field("pagepath")

    @property
    def text(self) -> str:
        return self.title


@KF_MODELS.register("msgmenu")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfMsgMenu(KfItem):
    """A menu message (菜单消息); ``text`` is head, every option's label and tail, one a line."""

    head_content: str = json_field("head_content")
    items: tuple[KfMenuItem, ...] = json_field("list", read_menu_items, ())
    tail_content: str = json_field("tail_content")

    @property
    def text(self) -> str:
        return _join("\n", self.head_content, *(i.content for i in self.items), self.tail_content)


@KF_MODELS.register("merged_msg")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfMergedMsg(KfItem):
    """A forwarded chat record; ``text`` is the title and each text message, one a line."""

    title: str = json_field("title")
    items: tuple[KfMergedItem, ...] = json_field("item", read_merged_items, ())

    @property
    def text(self) -> str:
        return _join("\n", self.title, *(i.text for i in self.items))


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
        canonical_json(item, strict=True)
    except (TypeError, ValueError, RecursionError) as exc:
        raise KfItemError("item is not plain JSON") from exc
    msgid = read_str(item, "msgid")
    if not msgid:
        raise KfItemError("msgid is missing", field="msgid")
    msgtype = read_str(item, "msgtype")
    event: Mapping[str, Any] = {}
    if msgtype == EVENT:
        event = read_object(item, EVENT)
        model = KF_MODELS.lookup(EVENT, read_str(event, "event_type", EVENT))
        body = event
    else:
        model = KF_MODELS.lookup(msgtype)
        # An unknown msgtype's body may have any shape: it is kept raw, not read.
        body = {} if model is KfUnknown else read_object(item, msgtype)

    def with_event_fallback(key: str) -> str:
        # Event items carry open_kfid / external_userid / servicer_userid inside the event only.
        return read_str(item, key) or read_str(event, key, EVENT)

    common = KfCommon(
        msgid=msgid,
        open_kfid=with_event_fallback("open_kfid"),
        external_userid=with_event_fallback("external_userid"),
        send_time=read_int(item, "send_time"),
        origin=read_int(item, "origin"),
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
