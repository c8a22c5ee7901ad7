"""微信客服 (kf): ``kf/sync_msg``, ``kf/send_msg``, ``kf/send_msg_on_event`` and
``kf/service_state/get|trans`` as WeCom checks and answers them (wecom-protocol.md §4).

Always: 95000 for a missing open_kfid; 40058 for a bad ``limit``/``cursor``, a message without its
body, a missing ``touser``/``code``/``external_userid``, a bad service_state or a move to state 3
without a servicer. A cursor is an offset into the account's queue
(:meth:`EmulatorState.queue_kf`); one the emulator never issued (not decimal) reads an empty,
final page and is answered back unchanged.

With ``kf_strict`` WeCom's kf rules apply too: ``send_msg`` refuses a 6th message after the
customer's latest message, or any once 48 h have passed (95001, WeCom's code), and a session with
a human or ended (state 2/3/4: 95018, our choice); a msgid already delivered is answered ok and not
delivered again; ``send_msg_on_event`` takes only a code the emulator issued, once, within its
life (welcome_code 20 s; else 40058, our choice); ``sync_msg`` checks its token (issued, for that
account, 10 min: else 95007, WeCom's "invalid msg token") and without one allows
``kf_tokenless_per_minute`` calls (then 45009). Deliveries and refusals go to the state.
"""

from __future__ import annotations

from typing import Any

from .checks import Accepted, Endpoint, Refusal, check_text, made_up_id, need_str
from .settings import EmulatorSettings
from .state import EmulatorState

__all__ = ["KF_BAD_CODE", "KF_BAD_MSG_TOKEN", "KF_ENDPOINTS", "KF_OVER_LIMIT", "KF_STATE_REFUSES"]

KF_OVER_LIMIT = 95001  # WeCom: over the 5 messages allowed after a customer message
KF_BAD_MSG_TOKEN = 95007  # WeCom: invalid msg token (sync_msg)
KF_STATE_REFUSES = 95018  # our choice: the session is not with the API (state 2, 3 or 4)
KF_BAD_CODE = 40058  # our choice: a send_msg_on_event code unknown, used or expired
KF_WINDOW_S = 48 * 3600
KF_WINDOW_SENDS = 5


def sync_msg(settings: EmulatorSettings, state: EmulatorState, body: dict[str, Any]) -> Accepted:
    """``kf/sync_msg`` (doc 94670): a page of the account's queue from ``cursor``."""
    kfid = _open_kfid(body)
    limit = body.get("limit", 1000)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
        raise Refusal(40058, "invalid limit")
    cursor = body.get("cursor") or "0"
    if not isinstance(cursor, str):
        raise Refusal(40058, "invalid cursor")
    if settings.kf_strict:
        _check_pull_token(settings, state, kfid, body.get("token"))
    if not cursor.isdecimal():
        return Accepted({"next_cursor": cursor, "has_more": 0, "msg_list": []})
    queue, start = state.kf_queue.get(kfid, []), int(cursor)
    if settings.kf_page_size is not None:
        limit = min(limit, settings.kf_page_size)
    page = queue[start : start + limit]
    end = start + len(page)
    return Accepted({"next_cursor": str(end), "has_more": int(end < len(queue)), "msg_list": page})


def _check_pull_token(
    settings: EmulatorSettings, state: EmulatorState, kfid: str, token: object
) -> None:
    now = settings.wall()
    if token:
        issued = state.kf_pull_tokens.get(str(token))
        if issued is None or issued[0] != kfid or now >= issued[1]:
            raise Refusal(KF_BAD_MSG_TOKEN, "invalid msg token")
        return
    recent = [t for t in state.kf_tokenless.get(kfid, []) if now - t < 60]
    if len(recent) >= settings.kf_tokenless_per_minute:
        raise Refusal(45009, "api freq out of limit (sync_msg without token)")
    state.kf_tokenless[kfid] = [*recent, now]


def send_msg(settings: EmulatorSettings, state: EmulatorState, body: dict[str, Any]) -> Accepted:
    """``kf/send_msg`` (doc 94677)."""
    user = need_str(body, "touser")
    kfid = _open_kfid(body)
    msgid = _message_id(settings, body)
    if not settings.kf_strict:
        return Accepted({"msgid": msgid})
    if (kfid, msgid) in state.kf_msgids:
        state.kf_duplicates += 1  # WeCom does not deliver a msgid twice
        return Accepted({"msgid": msgid}, repeat=True)
    key = (kfid, user)
    path = "kf/send_msg"
    if state.session(key)[0] not in (0, 1):
        _refuse(state, path, KF_STATE_REFUSES, body, "session not with the API")
    now = settings.wall()
    opened = state.kf_last_customer.get(key)
    if opened is None or now - opened >= KF_WINDOW_S:
        _refuse(state, path, KF_OVER_LIMIT, body, "no customer message in 48 h")
    if state.kf_window_sends.get(key, 0) >= KF_WINDOW_SENDS:
        _refuse(state, path, KF_OVER_LIMIT, body, "over the 5-message limit")
    state.kf_window_sends[key] = state.kf_window_sends.get(key, 0) + 1
    if state.session(key)[0] == 0:
        state.sessions[key] = (1, "")  # an API message puts the customer with the assistant
    state.deliver(key, msgid, body, via="send_msg", now=now)
    return Accepted({"msgid": msgid})


def send_msg_on_event(
    settings: EmulatorSettings, state: EmulatorState, body: dict[str, Any]
) -> Accepted:
    """``kf/send_msg_on_event``: one message per event code."""
    code = need_str(body, "code")
    msgid = _message_id(settings, body)
    if not settings.kf_strict:
        return Accepted({"msgid": msgid})
    issued = state.kf_codes.pop(code, None)  # single use, whatever happens next
    now = settings.wall()
    if issued is None or now >= issued[2]:
        _refuse(state, "kf/send_msg_on_event", KF_BAD_CODE, body, "invalid code")
    assert issued is not None
    state.deliver(issued[:2], msgid, body, via="send_msg_on_event", now=now)
    return Accepted({"msgid": msgid})


def service_state_get(
    settings: EmulatorSettings, state: EmulatorState, body: dict[str, Any]
) -> Accepted:
    """``kf/service_state/get``."""
    key = (need_str(body, "open_kfid"), need_str(body, "external_userid"))
    service_state, servicer = state.session(key)
    return Accepted({"service_state": service_state, "servicer_userid": servicer})


def service_state_trans(
    settings: EmulatorSettings, state: EmulatorState, body: dict[str, Any]
) -> Accepted:
    """``kf/service_state/trans``: a msg_code when moving to state 2, 3 or 4."""
    key = (need_str(body, "open_kfid"), need_str(body, "external_userid"))
    service_state = body.get("service_state")
    if (
        not isinstance(service_state, int)
        or isinstance(service_state, bool)
        or service_state not in range(5)
    ):
        raise Refusal(40058, "invalid service_state")
    servicer = body.get("servicer_userid")
    if service_state == 3 and not servicer:
        raise Refusal(40058, "servicer_userid required")
    state.sessions[key] = (service_state, str(servicer or ""))
    if service_state in (2, 3, 4):
        return Accepted({"msg_code": made_up_id(settings, "mc")})
    return Accepted()


def _open_kfid(body: dict[str, Any]) -> str:
    kfid = body.get("open_kfid")
    if not kfid or not isinstance(kfid, str):
        raise Refusal(95000, "invalid open_kfid")
    return kfid


def _message_id(settings: EmulatorSettings, body: dict[str, Any]) -> str:
    """The message's msgid, or a made-up one; after checking the body of its msgtype."""
    msgtype = body.get("msgtype")
    if not isinstance(msgtype, str) or not isinstance(body.get(msgtype), dict):
        raise Refusal(40058, "msgtype body missing")
    if msgtype == "text":
        check_text(body[msgtype].get("content"), 2048)
    msgid = body.get("msgid")
    return msgid if isinstance(msgid, str) and msgid else made_up_id(settings, "kf")


def _refuse(state: EmulatorState, path: str, errcode: int, body: dict[str, Any], why: str) -> None:
    state.kf_refused.append((path, errcode, body))
    raise Refusal(errcode, why)


KF_ENDPOINTS: dict[str, Endpoint] = {
    "kf/sync_msg": sync_msg,
    "kf/send_msg": send_msg,
    "kf/send_msg_on_event": send_msg_on_event,
    "kf/service_state/get": service_state_get,
    "kf/service_state/trans": service_state_trans,
}
