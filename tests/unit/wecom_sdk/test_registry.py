"""One registry mechanism for callback and kf models, and the fields every model answers to."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from wecom_sdk.messages import (
    CALLBACK_MODELS,
    Event,
    Message,
    Model,
    ParsedMessage,
    Registry,
    UnknownEvent,
    UnknownMessage,
    parse,
)
from wecom_sdk.messages import callback as callback_module
from wecom_sdk.messages import kf as kf_module
from wecom_sdk.messages.base import EVENT, field_readers, model_field
from wecom_sdk.messages.kf import (
    KF_MODELS,
    KfEvent,
    KfItem,
    KfText,
    KfUnknown,
    KfUnknownEvent,
    parse_kf_item,
)


def _read(d: Any, key: str, *_: str) -> str:
    return str(d.get(key) or "")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Plain(Model):
    note: str = model_field("Note", _read, "")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PlainEvent(Plain):
    @property
    def event(self) -> str:
        return "ping"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Unknown(Model):
    pass


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class UnknownKind(Model):
    pass


def fresh() -> Registry[Model]:
    registry: Registry[Model] = Registry(Unknown, UnknownKind)
    registry.register("note")(Plain)
    registry.register(EVENT, "ping")(PlainEvent)
    return registry


def test_lookup_finds_a_registered_type_and_event_else_the_unknown_of_its_kind() -> None:
    registry = fresh()
    assert registry.lookup("note") is Plain
    assert registry.lookup("note", "ignored for non-events") is Plain
    assert registry.lookup(EVENT, "ping") is PlainEvent
    assert registry.lookup("memo") is Unknown
    assert registry.lookup(EVENT, "pong") is UnknownKind
    assert registry.lookup(EVENT) is UnknownKind
    assert registry.lookup("NOTE") is Unknown  # keys match as registered; formats fold first
    assert dict(registry.models) == {("note", ""): Plain, (EVENT, "ping"): PlainEvent}


def test_register_refuses_mismatched_and_repeated_keys() -> None:
    registry = fresh()
    with pytest.raises(ValueError, match="event key"):
        registry.register(EVENT)
    with pytest.raises(ValueError, match="event key"):
        registry.register("note", "ping")
    with pytest.raises(ValueError, match="already builds Plain"):
        registry.register("note")(PlainEvent)
    with pytest.raises(TypeError):
        registry.models[("memo", "")] = Plain  # type: ignore[index]


def test_field_readers_list_the_declared_fields_once_per_class() -> None:
    assert field_readers(Plain) == (("note", _read, "Note"),)
    assert field_readers(Plain) is field_readers(Plain)
    assert field_readers(Unknown) == ()


def test_both_formats_use_the_one_registry_mechanism() -> None:
    assert isinstance(CALLBACK_MODELS, Registry)
    assert isinstance(KF_MODELS, Registry)
    assert (CALLBACK_MODELS.unknown, CALLBACK_MODELS.unknown_event) == (
        UnknownMessage,
        UnknownEvent,
    )
    assert (KF_MODELS.unknown, KF_MODELS.unknown_event) == (KfUnknown, KfUnknownEvent)
    assert CALLBACK_MODELS.lookup("text").__name__ == "TextMessage"
    assert KF_MODELS.lookup("text") is KfText


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NoteMessage(Message):
    body: str = model_field("Body", lambda d, tag: d.get(tag, ""), "")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class KfNote(KfItem):
    body: str = model_field("body", lambda d, key, where: d.get(key, ""), "")


def test_a_type_registered_once_is_built_by_its_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    callbacks: Registry[Message] = Registry(UnknownMessage, UnknownEvent)
    callbacks.register("note")(NoteMessage)
    kf_items: Registry[KfItem] = Registry(KfUnknown, KfUnknownEvent)
    kf_items.register("note")(KfNote)
    monkeypatch.setattr(callback_module, "CALLBACK_MODELS", callbacks)
    monkeypatch.setattr(kf_module, "KF_MODELS", kf_items)

    # Callback XML matches MsgType case-insensitively (the registry holds lower-case keys).
    xml = "<xml><MsgType>Note</MsgType><CreateTime>1</CreateTime><Body>b</Body></xml>"
    msg = parse(xml)
    assert type(msg) is NoteMessage
    assert (msg.body, msg.event, msg.raw["Body"]) == ("b", None, "b")
    # kf items match msgtype exactly.
    item = parse_kf_item({"msgid": "m1", "msgtype": "note", "note": {"body": "b"}})
    assert type(item) is KfNote
    assert (item.body, item.event) == ("b", None)
    other = parse_kf_item({"msgid": "m2", "msgtype": "Note", "Note": {"body": "b"}})
    assert type(other) is KfUnknown


def test_unknown_types_keep_the_raw_mapping() -> None:
    xml = "<xml><MsgType>memo</MsgType><CreateTime>1</CreateTime><X>y</X></xml>"
    assert parse(xml).raw["X"] == "y"
    event = (
        "<xml><MsgType>event</MsgType><Event>memo</Event><CreateTime>1</CreateTime><X>y</X></xml>"
    )
    assert parse(event).raw["X"] == "y"
    item = {"msgid": "m1", "msgtype": "memo", "memo": {"x": [1]}}
    assert parse_kf_item(item).raw == item
    event_item = {"msgid": "m2", "msgtype": "event", "event": {"event_type": "memo", "x": 1}}
    assert parse_kf_item(event_item).raw == event_item


def _callback(type_key: str, event_key: str) -> str:
    event = f"<Event>{event_key}</Event>" if event_key else ""
    return f"<xml><MsgType>{type_key}</MsgType>{event}<CreateTime>1</CreateTime></xml>"


def _kf(type_key: str, event_key: str) -> dict[str, Any]:
    if type_key == EVENT:
        return {"msgid": "m1", "msgtype": EVENT, "event": {"event_type": event_key}}
    return {"msgid": "m1", "msgtype": type_key, type_key: {}}


CALLBACK_KEYS = [*CALLBACK_MODELS.models, ("memo", ""), (EVENT, "memo")]
KF_KEYS = [*KF_MODELS.models, ("memo", ""), (EVENT, "memo")]


@pytest.mark.parametrize(("type_key", "event_key"), CALLBACK_KEYS)
def test_every_callback_model_exposes_event(type_key: str, event_key: str) -> None:
    msg = parse(_callback(type_key, event_key))
    assert type(msg) is CALLBACK_MODELS.lookup(type_key, event_key)
    assert msg.event == (event_key if type_key == EVENT else None)
    assert isinstance(msg, Event) == (type_key == EVENT)
    assert isinstance(msg, ParsedMessage)


@pytest.mark.parametrize(("type_key", "event_key"), KF_KEYS)
def test_every_kf_model_exposes_event(type_key: str, event_key: str) -> None:
    item = parse_kf_item(_kf(type_key, event_key))
    assert type(item) is KF_MODELS.lookup(type_key, event_key)
    assert item.event == (event_key if type_key == EVENT else None)
    assert isinstance(item, KfEvent) == (type_key == EVENT)
    assert isinstance(item, ParsedMessage)


def test_callback_and_kf_models_read_alike() -> None:
    """A pipeline reads either kind through ParsedMessage, with no check of its type."""
    xml = (
        "<xml><FromUserName>u1</FromUserName><CreateTime>7</CreateTime><MsgType>text</MsgType>"
        "<Content>hi</Content><MsgId>42</MsgId></xml>"
    )
    customer = {"msgid": "k1", "msgtype": "text", "text": {"content": "hi"}, "origin": 3}
    staff = {**customer, "msgid": "k2", "origin": 5, "servicer_userid": "s1"}
    system = {"msgid": "k3", "msgtype": EVENT, "origin": 4, "send_time": 9}
    system["event"] = {"event_type": "enter_session", "external_userid": "wm1"}
    messages: list[ParsedMessage] = [
        parse(xml),
        parse_kf_item({**customer, "external_userid": "wm1", "send_time": 8}),
        parse_kf_item(staff),
        parse_kf_item(system),
    ]
    read = [
        (m.dedupe_key, m.msg_type, m.event, m.text, m.create_time, m.from_user) for m in messages
    ]
    assert read == [
        ("msg:42", "text", None, "hi", 7, "u1"),
        ("kf:k1", "text", None, "hi", 8, "wm1"),
        ("kf:k2", "text", None, "hi", 0, "s1"),
        ("kf:k3", EVENT, "enter_session", "", 9, ""),
    ]
