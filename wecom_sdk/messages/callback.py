"""Typed, frozen models of decrypted WeCom callback messages and events.

One parser (:func:`from_mapping`) and one :class:`~wecom_sdk.messages.base.Registry` keyed by
``MsgType`` and, for events, ``Event``, both matched in lower case. Each model field names its XML
tag and reader with :func:`_xml`. Unknown types become :class:`UnknownMessage` /
:class:`UnknownEvent`; every model keeps the parsed mapping in ``raw`` for archiving.
Formats: https://developer.work.weixin.qq.com/document/path/90239 (messages) and
https://developer.work.weixin.qq.com/document/path/90240 (events).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self, TypedDict

from ..errors import XmlError
from ..xmlsafe import parse_xml
from .base import EVENT, Model, Registry, field_readers, model_field

__all__ = [
    "CALLBACK_MODELS",
    "ChangeExternalContactEvent",
    "EnterAgentEvent",
    "Event",
    "ImageMessage",
    "KfMsgOrEvent",
    "LinkMessage",
    "LocationEvent",
    "LocationMessage",
    "Message",
    "MsgAuditNotifyEvent",
    "SelectedItem",
    "SubscribeEvent",
    "TemplateCardEvent",
    "TextMessage",
    "UnknownEvent",
    "UnknownMessage",
    "VideoMessage",
    "VoiceMessage",
    "from_mapping",
    "parse",
]

#: Longest MsgId used verbatim in a dedupe key (real ones have at most 20 digits).
_MSG_ID_KEY_MAX = 64

_INT_RE = re.compile(r"-?[0-9]{1,19}")
_Reader = Callable[[Mapping[str, Any], str], Any]


def _text(d: Mapping[str, Any], tag: str) -> str:
    value = d.get(tag, "")
    if not isinstance(value, str):
        raise XmlError(f"<{tag}> should be text")
    return value


def _int(d: Mapping[str, Any], tag: str) -> int:
    text = _text(d, tag).strip()
    if not text:
        return 0
    # Not bare int(): it takes "1_000", "+1" and Unicode digits, and fails on huge inputs.
    if not _INT_RE.fullmatch(text):
        raise XmlError(f"<{tag}> is not an integer")
    return int(text)


def _float(d: Mapping[str, Any], tag: str) -> float:
    text = _text(d, tag).strip()
    if not text:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise XmlError(f"<{tag}> is not a finite number")
    return value


def _as_mapping(value: Any, tag: str) -> Mapping[str, Any]:
    if value == "":  # an empty element parses as ''
        return {}
    if not isinstance(value, Mapping):
        raise XmlError(f"<{tag}> should hold child elements")
    return value


def _children(d: Mapping[str, Any], tag: str) -> Mapping[str, Any]:
    return _as_mapping(d.get(tag, ""), tag)


def _repeated(d: Mapping[str, Any], tag: str) -> list[Any]:
    value = d.get(tag, "")
    if value == "":
        return []
    return value if isinstance(value, list) else [value]


def _xml(tag: str, read: _Reader = _text, default: Any = "", *, secret: bool = False) -> Any:
    """A model field read from XML ``tag`` by ``read(mapping, tag)``."""
    return model_field(tag, read, default, secret=secret)


class _Common(TypedDict):
    to_user: str
    from_user: str
    create_time: int
    msg_type: str
    agent_id: str | None
    raw: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Message(Model):
    """Fields common to every callback message and event.

    Attributes:
        to_user: ToUserName, the corpid.
        from_user: FromUserName, the member's userid ('' on some system events).
        create_time: CreateTime, Unix seconds.
        msg_type: MsgType as sent.
        agent_id: AgentID as a string (sent as CDATA or as a bare int), None when absent.
    """

    to_user: str
    from_user: str
    create_time: int
    msg_type: str
    agent_id: str | None = None

    @property
    def dedupe_key(self) -> str:
        """``msg:<MsgId>`` for messages, else ``evt:<sha256 of the canonical raw mapping>``.

        WeCom suggests FromUserName + CreateTime for events, but distinct events in one second
        (batch approvals, several contacts added at once) collide on it.
        """
        msg_id = self.raw.get("MsgId")
        if isinstance(msg_id, str) and msg_id:
            if len(msg_id) <= _MSG_ID_KEY_MAX:
                return f"msg:{msg_id}"
            # Real MsgIds are 64-bit integers; a longer one still needs a bounded, stable key.
            return "msgh:" + hashlib.sha256(msg_id.encode("utf-8")).hexdigest()
        canonical = json.dumps(
            self.raw, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
        )
        return "evt:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    @classmethod
    def _build(cls, common: _Common, d: Mapping[str, Any]) -> Self:
        return cls(**common, **{name: read(d, tag) for name, read, tag in field_readers(cls)})


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownMessage(Message):
    """Any MsgType without a model; read ``raw``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Event(Message):
    """Base of every event (MsgType ``event``).

    Attributes:
        event: The Event name as sent; matched case-insensitively (WeCom sends ``LOCATION``).
    """

    event: str = _xml("Event")


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent(Event):
    """Any Event without a model; read ``raw``."""


CALLBACK_MODELS: Registry[Message] = Registry(UnknownMessage, UnknownEvent)
"""The callback models by lower-case MsgType and Event."""


@CALLBACK_MODELS.register("text")
@dataclass(frozen=True, slots=True, kw_only=True)
class TextMessage(Message):
    """A text message."""

    content: str = _xml("Content")
    msg_id: str = _xml("MsgId")

    @property
    def text(self) -> str | None:
        return self.content


@CALLBACK_MODELS.register("image")
@dataclass(frozen=True, slots=True, kw_only=True)
class ImageMessage(Message):
    """An image message."""

    pic_url: str = _xml("PicUrl")
    media_id: str = _xml("MediaId")
    msg_id: str = _xml("MsgId")


@CALLBACK_MODELS.register("voice")
@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceMessage(Message):
    """A voice message; ``format`` is e.g. amr or speex."""

    media_id: str = _xml("MediaId")
    format: str = _xml("Format")
    msg_id: str = _xml("MsgId")


@CALLBACK_MODELS.register("video")
@dataclass(frozen=True, slots=True, kw_only=True)
class VideoMessage(Message):
    """A video message."""

    media_id: str = _xml("MediaId")
    thumb_media_id: str = _xml("ThumbMediaId")
    msg_id: str = _xml("MsgId")


@CALLBACK_MODELS.register("location")
@dataclass(frozen=True, slots=True, kw_only=True)
class LocationMessage(Message):
    """A location message: ``location_x`` is the latitude, ``location_y`` the longitude."""

    location_x: float = _xml("Location_X", _float, 0.0)
    location_y: float = _xml("Location_Y", _float, 0.0)
    scale: int = _xml("Scale", _int, 0)
    label: str = _xml("Label")
    msg_id: str = _xml("MsgId")


@CALLBACK_MODELS.register("link")
@dataclass(frozen=True, slots=True, kw_only=True)
class LinkMessage(Message):
    """A link message."""

    title: str = _xml("Title")
    description: str = _xml("Description")
    url: str = _xml("Url")
    pic_url: str = _xml("PicUrl")
    msg_id: str = _xml("MsgId")


@CALLBACK_MODELS.register(EVENT, "subscribe")
@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeEvent(Event):
    """A member followed the app (关注)."""


@CALLBACK_MODELS.register(EVENT, "enter_agent")
@dataclass(frozen=True, slots=True, kw_only=True)
class EnterAgentEvent(Event):
    """A member opened the app (进入应用)."""

    event_key: str = _xml("EventKey")


@CALLBACK_MODELS.register(EVENT, "location")
@dataclass(frozen=True, slots=True, kw_only=True)
class LocationEvent(Event):
    """A periodic location report (上报地理位置, Event ``LOCATION``)."""

    latitude: float = _xml("Latitude", _float, 0.0)
    longitude: float = _xml("Longitude", _float, 0.0)
    precision: float = _xml("Precision", _float, 0.0)


@CALLBACK_MODELS.register(EVENT, "kf_msg_or_event")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfMsgOrEvent(Event):
    """微信客服 has news: pull it with kf/sync_msg and ``token`` (valid 10 min; doc 94670)."""

    token: str = _xml("Token", secret=True)
    open_kf_id: str = _xml("OpenKfId")


@dataclass(frozen=True, slots=True)
class SelectedItem:
    """One answered question of a template card: its key and the chosen option ids."""

    question_key: str
    option_ids: tuple[str, ...] = ()


def _selected_items(d: Mapping[str, Any], tag: str) -> tuple[SelectedItem, ...]:
    items = []
    for item in _repeated(_children(d, tag), "SelectedItem"):
        entry = _as_mapping(item, "SelectedItem")
        # The official sample spells it OpitonIds/OpitonId; accept that and the correct spelling.
        ids_tag = "OptionIds" if "OptionIds" in entry else "OpitonIds"
        ids = _children(entry, ids_tag)
        options = _repeated(ids, "OptionId" if "OptionId" in ids else "OpitonId")
        if not all(isinstance(o, str) for o in options):
            raise XmlError("<OptionId> should be text")
        items.append(SelectedItem(_text(entry, "QuestionKey"), tuple(options)))
    return tuple(items)


@CALLBACK_MODELS.register(EVENT, "template_card_event")
@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateCardEvent(Event):
    """A template-card button was clicked (模板卡片事件推送, doc 90240).

    ``response_code`` feeds message/update_template_card (72 h, single use); ``selected_items``
    holds the choices of vote / multiple-choice cards.
    """

    event_key: str = _xml("EventKey")
    task_id: str = _xml("TaskId")
    card_type: str = _xml("CardType")
    response_code: str = _xml("ResponseCode", secret=True)
    selected_items: tuple[SelectedItem, ...] = _xml("SelectedItems", _selected_items, ())


@CALLBACK_MODELS.register(EVENT, "change_external_contact")
@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeExternalContactEvent(Event):
    """A customer contact was added, edited or removed (doc 92130).

    ``change_type`` is e.g. ``add_external_contact``; ``welcome_code`` allows one welcome
    message within 20 s.
    """

    change_type: str = _xml("ChangeType")
    user_id: str = _xml("UserID")
    external_user_id: str = _xml("ExternalUserID")
    state: str = _xml("State")
    welcome_code: str = _xml("WelcomeCode", secret=True)


@CALLBACK_MODELS.register(EVENT, "msgaudit_notify")
@dataclass(frozen=True, slots=True, kw_only=True)
class MsgAuditNotifyEvent(Event):
    """New session-archive data can be pulled (会话内容存档, 产生会话回调事件)."""


def parse(xml: bytes | str) -> Message:
    """Parse decrypted callback XML into its typed model.

    Raises:
        XmlError: Malformed or refused XML, no MsgType, or a non-integer CreateTime.
    """
    return from_mapping(parse_xml(xml))


def from_mapping(d: Mapping[str, Any]) -> Message:
    """Build the typed model of an already parsed callback mapping.

    Raises:
        XmlError: No MsgType, a missing or non-integer CreateTime, or a field of the wrong shape.
    """
    msg_type = _text(d, "MsgType")
    if not msg_type:
        raise XmlError("missing <MsgType>")
    if not _text(d, "CreateTime").strip():
        raise XmlError("missing <CreateTime>")
    common = _Common(
        to_user=_text(d, "ToUserName"),
        from_user=_text(d, "FromUserName"),
        create_time=_int(d, "CreateTime"),
        msg_type=msg_type,
        agent_id=None if d.get("AgentID") is None else _text(d, "AgentID"),
        raw=d,
    )
    type_key = msg_type.lower()
    event_key = _text(d, "Event").lower() if type_key == EVENT else ""
    return CALLBACK_MODELS.lookup(type_key, event_key)._build(common, d)
