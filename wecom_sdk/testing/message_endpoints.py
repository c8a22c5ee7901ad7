"""App messages, app group chats and the group robot: ``message/send``,
``message/update_template_card``, ``appchat/send`` and ``webhook/send`` as WeCom checks and
answers them (wecom-protocol.md §5; appchat: doc 90248).

81013 when every recipient field is empty; 40008 for a msgtype WeCom does not know or without its
body; 40058 for a template card without ``card_type``, an interactive one without ``task_id``, an
update without ``response_code`` or without ``button``/``template_card``; 86001 for an
``appchat/send`` to a chat id that is missing or not one of the app's chats
(``EmulatorSettings.app_chats``).
"""

from __future__ import annotations

import json
from typing import Any

from .checks import Accepted, Endpoint, Refusal, check_agent, check_text, made_up_id, need_str
from .settings import EmulatorSettings
from .state import MAX_DUP_INTERVAL_S, EmulatorState

__all__ = ["MESSAGE_ENDPOINTS"]

MSGTYPES = frozenset(
    {
        "text",
        "markdown",
        "textcard",
        "news",
        "mpnews",
        "template_card",
        "image",
        "voice",
        "video",
        "file",
        "miniprogram_notice",
    }
)
INTERACTIVE = frozenset({"button_interaction", "vote_interaction", "multiple_interaction"})
DEFAULT_DUP_INTERVAL_S = 1800


def message_send(
    settings: EmulatorSettings, state: EmulatorState, body: dict[str, Any]
) -> Accepted:
    """``message/send`` (doc 90236)."""
    if not any(body.get(k) for k in ("touser", "toparty", "totag")):
        raise Refusal(81013, "user & party & tag all invalid")
    check_agent(settings, body)
    msgtype = body.get("msgtype")
    if msgtype not in MSGTYPES or not isinstance(body.get(msgtype), dict):
        raise Refusal(40008, "invalid message type")
    payload = body[msgtype]
    if msgtype in ("text", "markdown"):
        check_text(payload.get("content"), 2048)
    answer: dict[str, Any] = {"invaliduser": "", "msgid": made_up_id(settings, "msg")}
    if msgtype == "template_card":
        if "card_type" not in payload:
            raise Refusal(40058, "template_card.card_type missing")
        if payload["card_type"] in INTERACTIVE and not payload.get("task_id"):
            raise Refusal(40058, "template_card.task_id missing")
        answer["response_code"] = made_up_id(settings, "rc")
    # The same JSON within the interval is delivered once, yet WeCom still answers 0.
    repeat = body.get("enable_duplicate_check") == 1 and _duplicate(settings, state, body)
    return Accepted(answer, repeat=repeat)


def _duplicate(settings: EmulatorSettings, state: EmulatorState, body: dict[str, Any]) -> bool:
    interval = body.get("duplicate_check_interval", DEFAULT_DUP_INTERVAL_S)
    if not isinstance(interval, int) or not 0 < interval <= MAX_DUP_INTERVAL_S:
        interval = DEFAULT_DUP_INTERVAL_S
    key = json.dumps(body, sort_keys=True, ensure_ascii=False)
    return state.seen_within(key, settings.clock(), interval)


def update_template_card(
    settings: EmulatorSettings, state: EmulatorState, body: dict[str, Any]
) -> Accepted:
    """``message/update_template_card`` (doc 94888)."""
    need_str(body, "response_code")
    check_agent(settings, body)
    if "button" not in body and "template_card" not in body:
        raise Refusal(40058, "button or template_card required")
    return Accepted({"invaliduser": []})


def appchat_send(
    settings: EmulatorSettings, state: EmulatorState, body: dict[str, Any]
) -> Accepted:
    """``appchat/send`` (doc 90248): a message into a group chat the app created."""
    chatid = body.get("chatid")
    known = settings.app_chats
    if not isinstance(chatid, str) or not chatid or (known is not None and chatid not in known):
        raise Refusal(86001, "chatid invalid")
    msgtype = body.get("msgtype")
    if msgtype not in MSGTYPES - {"template_card", "miniprogram_notice"} or not isinstance(
        body.get(msgtype), dict
    ):
        raise Refusal(40008, "invalid message type")
    if msgtype in ("text", "markdown"):
        check_text(body[msgtype].get("content"), 2048)
    return Accepted()


def webhook_send(
    settings: EmulatorSettings, state: EmulatorState, body: dict[str, Any]
) -> Accepted:
    """``webhook/send`` (doc 99110): text up to 2048 bytes, markdown up to 4096."""
    msgtype = body.get("msgtype")
    if msgtype not in ("text", "markdown") or not isinstance(body.get(msgtype), dict):
        raise Refusal(40008, "invalid message type")
    check_text(body[msgtype].get("content"), 2048 if msgtype == "text" else 4096)
    return Accepted()


MESSAGE_ENDPOINTS: dict[str, Endpoint] = {
    "message/send": message_send,
    "message/update_template_card": update_template_card,
    "appchat/send": appchat_send,
    "webhook/send": webhook_send,
}
