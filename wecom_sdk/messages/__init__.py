"""WeCom message models: decrypted callback XML (:mod:`.callback`) and kf items (:mod:`.kf`).

Every model is a frozen dataclass that keeps its raw mapping; an unknown type is kept raw.
"""

from __future__ import annotations

from .callback import (
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
