"""The 微信客服 (kf) event items (msgtype ``event``, origin 4), by ``event.event_type``.

Fields are read from the item's ``event`` object.
Format: https://developer.work.weixin.qq.com/document/path/94670 (sync_msg).
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import EVENT
from .kf_fields import json_field, read_int
from .kf_item import KF_MODELS, KfEvent

__all__ = [
    "KfEnterSession",
    "KfMsgSendFail",
    "KfRecall",
    "KfServicerStatusChange",
    "KfSessionStatusChange",
]


@KF_MODELS.register(EVENT, "enter_session")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfEnterSession(KfEvent):
    """The customer entered the session (from a kf link, a scene QR code, a channel, ...).

    ``welcome_code`` is set when a welcome may be sent with send_msg_on_event (20 s, once).
    """

    scene: str = json_field("scene")
    scene_param: str = json_field("scene_param")
    welcome_code: str = json_field("welcome_code", secret=True)


@KF_MODELS.register(EVENT, "msg_send_fail")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfMsgSendFail(KfEvent):
    """A message we sent was not delivered.

    ``fail_type``: 0 unknown, 1 account deleted, 2 app closed, 4 session expired (> 48 h),
    5 session closed, 6 over the 5-message limit, 7/8/9 channel or verification issues,
    10 customer refused.
    """

    fail_msgid: str = json_field("fail_msgid")
    fail_type: int = json_field("fail_type", read_int, 0)


@KF_MODELS.register(EVENT, "servicer_status_change")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfServicerStatusChange(KfEvent):
    """A servicer (``servicer_userid``) changed status: 1 receiving, 2 stopped.

    ``stop_type`` (when stopped): 0 stopped receiving, 1 temporarily suspended.
    """

    status: int = json_field("status", read_int, 0)
    stop_type: int = json_field("stop_type", read_int, 0)


@KF_MODELS.register(EVENT, "session_status_change")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfSessionStatusChange(KfEvent):
    """A servicer changed the session: ``change_type`` 1 taken from pool, 2 transferred, 3 ended.

    ``msg_code`` allows one message through send_msg_on_event.
    """

    change_type: int = json_field("change_type", read_int, 0)
    old_servicer_userid: str = json_field("old_servicer_userid")
    new_servicer_userid: str = json_field("new_servicer_userid")
    msg_code: str = json_field("msg_code", secret=True)


@KF_MODELS.register(EVENT, "user_recall_msg")
@KF_MODELS.register(EVENT, "servicer_recall_msg")
@dataclass(frozen=True, slots=True, kw_only=True)
class KfRecall(KfEvent):
    """A message was recalled; ``event_type`` tells the customer's recall from a servicer's.

    Compliance keeps the original: mark ``recall_msgid`` recalled, never delete it.
    """

    recall_msgid: str = json_field("recall_msgid")
