"""WeCom message models: decrypted callback XML (:mod:`.callback`) and kf items (:mod:`.kf`).

Both are built on :mod:`.base`: every model is a frozen dataclass deriving from :class:`Model`,
so it keeps its raw mapping, and each format has one :class:`Registry` of its models by type
(and event), whose misses are kept raw as the Unknown model of their kind. Any model reads as a
:class:`ParsedMessage`. The callback names are re-exported here, the kf names from :mod:`.kf`.
"""

from __future__ import annotations

from .base import Model, ParsedMessage, Registry
from .callback import (
    CALLBACK_MODELS,
    ChangeExternalContactEvent,
    EnterAgentEvent,
    Event,
    ImageMessage,
    KfMsgOrEvent,
    LinkMessage,
    LocationEvent,
    LocationMessage,
    Message,
    MsgAuditNotifyEvent,
    SelectedItem,
    SubscribeEvent,
    TemplateCardEvent,
    TextMessage,
    UnknownEvent,
    UnknownMessage,
    VideoMessage,
    VoiceMessage,
    from_mapping,
    parse,
)

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
    "Model",
    "MsgAuditNotifyEvent",
    "ParsedMessage",
    "Registry",
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
