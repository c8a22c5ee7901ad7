"""The base of every WeCom message model and the one registry that picks a model by type.

Callback XML (:mod:`.callback`) and kf items (:mod:`.kf`) are both built this way: a model is a
frozen, slotted dataclass deriving from :class:`Model`, so it keeps its raw mapping; its fields
read from that mapping are declared with :func:`model_field` and read by :func:`field_readers`
(computed once per class). A :class:`Registry` maps a type key, and for events an event key, to
a model class, and falls back to the Unknown model of its kind, which keeps the raw mapping and
reads nothing else. :class:`ParsedMessage` is what a pipeline reads from any of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

__all__ = [
    "EVENT",
    "FieldReader",
    "Model",
    "ParsedMessage",
    "Reader",
    "Registry",
    "field_readers",
    "model_field",
]

EVENT = "event"
"""The type key of events: callback ``MsgType`` and kf ``msgtype`` alike."""

Reader = Callable[..., Any]
"""Reads one field from a raw mapping: ``read(mapping, key, ...)``; each format fixes the rest."""

FieldReader = tuple[str, Reader, str]
"""(field name, reader, key in the raw mapping) of one field read from the raw mapping."""


@runtime_checkable
class ParsedMessage(Protocol):
    """What a pipeline reads from a message, whatever its kind (callback, kf, ...)."""

    @property
    def dedupe_key(self) -> str:
        """A bounded key that is the same for every delivery of one message."""

    @property
    def msg_type(self) -> str:
        """The message type as sent."""

    @property
    def event(self) -> str | None:
        """The event name for events, None for messages."""

    @property
    def text(self) -> str | None:
        """The text the rules inspect; None (callback) or "" (kf) when there is none."""

    @property
    def create_time(self) -> int:
        """Unix seconds."""

    @property
    def from_user(self) -> str:
        """Who wrote it (a member's userid, a customer's external_userid), "" when nobody did."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Model:
    """Base of every message model.

    Attributes:
        raw: The whole mapping the model was built from, kept for archiving.
    """

    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, hash=False)

    @property
    def event(self) -> str | None:
        """The event name for events, None for messages."""
        return None

    @property
    def text(self) -> str | None:
        """The text the rules inspect, None when the model carries none."""
        return None


def model_field(key: str, read: Reader, default: Any, *, secret: bool = False) -> Any:
    """A model field read from ``key`` by ``read``; ``default`` serves direct construction.

    A ``secret`` field (a one-time code, a pull token) stays out of ``repr``.
    """
    return field(default=default, repr=not secret, metadata={"key": key, "read": read})


_FIELD_READERS: dict[type[Model], tuple[FieldReader, ...]] = {}


def field_readers(model: type[Model]) -> tuple[FieldReader, ...]:
    """The fields of ``model`` declared with :func:`model_field`, in field order.

    ``dataclasses.fields()`` builds a tuple and filters pseudo-fields on every call: once per
    model class is enough (model classes do not change).
    """
    readers = _FIELD_READERS.get(model)
    if readers is None:
        readers = _FIELD_READERS[model] = tuple(
            (f.name, f.metadata["read"], f.metadata["key"]) for f in fields(model) if f.metadata
        )
    return readers


_M = TypeVar("_M", bound=Model)


class Registry(Generic[_M]):
    """Model classes by type key and, for events (:data:`EVENT`), event key.

    Keys match exactly as registered: a format that matches case-insensitively folds them before
    :meth:`lookup`. A type without a model gets ``unknown``, an event without one
    ``unknown_event``.
    """

    __slots__ = ("_models", "unknown", "unknown_event")

    def __init__(self, unknown: type[_M], unknown_event: type[_M]) -> None:
        self._models: dict[tuple[str, str], type[_M]] = {}
        self.unknown = unknown
        self.unknown_event = unknown_event

    @property
    def models(self) -> Mapping[tuple[str, str], type[_M]]:
        """The registered models by (type key, event key), read-only."""
        return MappingProxyType(self._models)

    def register(self, type_key: str, event_key: str = "") -> Callable[[type[_M]], type[_M]]:
        """Class decorator: items of ``type_key`` (events: of ``event_key``) build this model.

        Raises:
            ValueError: An event without an event key, an event key on a non-event type, or a
                key registered twice.
        """
        if (type_key == EVENT) != bool(event_key):
            raise ValueError(f"an event key goes with type {EVENT!r} only: {type_key!r}")
        key = (type_key, event_key)

        def add(model: type[_M]) -> type[_M]:
            if key in self._models:
                raise ValueError(f"{key} already builds {self._models[key].__name__}")
            self._models[key] = model
            return model

        return add

    def lookup(self, type_key: str, event_key: str = "") -> type[_M]:
        """The model for a type (events: and event key), else the Unknown model of its kind."""
        if type_key == EVENT:
            return self._models.get((EVENT, event_key), self.unknown_event)
        return self._models.get((type_key, ""), self.unknown)
