"""The send sandbox: a WeCom stand-in used when no ``[wecom].secret`` is configured.

:class:`SandboxTransport` plugs into ``WeComClient(transport=...)``. It answers every API call the
bot makes the way WeCom would (same validation and errcodes as the test fake: 41001/40014 token,
81013 no recipient, 40056 agentid, 40008 msgtype, 44004/45002 content, 40058 other fields, 95000
open_kfid, 93000 robot key, 47001 body) and records each accepted call in a :class:`SandboxLog`,
so ``/sandbox/`` (``bot.sandbox.pages``) shows the card a manager would have got. Nothing leaves the
machine. Credentials (access_token, robot key) are only checked, never recorded.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from yarl import URL

from bot.log import server_log
from monitor.archive import MonitorError, SandboxLog
from wecom_sdk.errors import ServiceUnavailable, TransportError

__all__ = ["SANDBOX_TOKEN", "SandboxTransport", "api_path"]

SANDBOX_TOKEN = "sandbox-access-token"
"""The access_token the sandbox hands out and accepts (constant, so a shared token cache works)."""

_EXPIRES_IN = 7200
_MAX_DUP_INTERVAL = 4 * 3600
_MSGTYPES = frozenset(
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
_INTERACTIVE = frozenset({"button_interaction", "vote_interaction", "multiple_interaction"})

Answer = dict[str, Any]


class _Bad(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode, self.errmsg = errcode, errmsg


def api_path(url: URL) -> str:
    """The API path under ``/cgi-bin/`` (``"message/send"``), whatever the host; no query."""
    path = url.path
    _, sep, tail = path.partition("/cgi-bin/")
    return tail if sep else path.lstrip("/")


class SandboxTransport:
    """A :class:`wecom_sdk.client.Transport` that answers like WeCom and records instead of sending.

    Args:
        log: where accepted calls are recorded (the database, so every worker's page sees them).
        corp_id: the configured corp id; ``gettoken`` with another one gets 40013.
        agent_id: the configured app id; when set, ``agentid`` must equal it (else 40056).
        clock: wall-clock seconds, for record times and the duplicate check.

    Any ``corpsecret`` is accepted (the sandbox runs precisely because none is configured).
    ``kf/sync_msg`` answers an empty page; ``gettoken`` and ``kf/sync_msg`` are not recorded.
    """

    def __init__(
        self,
        log: SandboxLog,
        corp_id: str,
        agent_id: int | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._log = log
        self._corp_id = corp_id
        self._agent_id = agent_id
        self._clock = clock
        self._dup_seen: dict[str, float] = {}  # body JSON -> when it was last delivered
        self._states: dict[tuple[str, str], tuple[int, str]] = {}
        self._routes: dict[str, Callable[[dict[str, Any]], Answer]] = {
            "message/send": self._message_send,
            "message/update_template_card": self._update_card,
            "kf/sync_msg": self._sync_msg,
            "kf/send_msg": self._kf_send,
            "kf/send_msg_on_event": self._kf_send_on_event,
            "kf/service_state/get": self._state_get,
            "kf/service_state/trans": self._state_trans,
            "webhook/send": self._webhook,
        }

    def __repr__(self) -> str:
        return f"SandboxTransport(corp_id={self._corp_id!r}, agent_id={self._agent_id!r})"

    async def exchange(self, method: str, url: URL, body: Mapping[str, Any] | None) -> object:
        """Answer one call as WeCom would; record it when accepted (see the class docstring)."""
        path = api_path(url)
        if path == "gettoken":
            if method != "GET":
                raise TransportError(f"{url.path}: HTTP 405", path=url.path)
            return self._gettoken(url)
        handler = self._routes.get(path)
        if handler is None:
            raise TransportError(f"{url.path}: HTTP 404", path=url.path)
        if method != "POST":
            raise TransportError(f"{url.path}: HTTP 405", path=url.path)
        # Through JSON and back, as on the wire: the record holds exactly what WeCom would get.
        data = json.loads(json.dumps(body, ensure_ascii=False)) if body is not None else None
        try:
            self._check_credential(path, url)
            if not isinstance(data, dict):
                raise _Bad(47001, "data format error")
            answer = handler(data)
        except _Bad as bad:
            return {"errcode": bad.errcode, "errmsg": bad.errmsg}
        recorded = answer.pop("_recorded", True)
        answer = {"errcode": 0, "errmsg": "ok", **answer}
        if recorded:
            await self._record(path, data, answer, url)
        return answer

    async def _record(self, path: str, body: Answer, answer: Answer, url: URL) -> None:
        at = datetime.fromtimestamp(self._clock(), UTC)
        try:
            call_id = await self._log.record(path, body, answer, at=at)
        except MonitorError as exc:
            # As if WeCom were unreachable: the caller retries, and the page shows it once stored.
            # `from None`: the database error's cause carries SQL parameters (chat text).
            why = f"sandbox log unavailable ({type(exc).__name__})"
            raise ServiceUnavailable(f"{url.path}: {why}", path=url.path) from None
        server_log.info("sandbox: %s recorded as call %d, not sent to WeCom", path, call_id)

    # -- credentials -------------------------------------------------------------------------

    def _gettoken(self, url: URL) -> Answer:
        corp_id, secret = url.query.get("corpid"), url.query.get("corpsecret")
        if not corp_id:
            return {"errcode": 41002, "errmsg": "corpid missing"}
        if corp_id != self._corp_id:
            return {"errcode": 40013, "errmsg": "invalid corpid"}
        if secret is None:
            return {"errcode": 41004, "errmsg": "corpsecret missing"}
        return {
            "errcode": 0,
            "errmsg": "ok",
            "access_token": SANDBOX_TOKEN,
            "expires_in": _EXPIRES_IN,
        }

    def _check_credential(self, path: str, url: URL) -> None:
        if path == "webhook/send":
            if not url.query.get("key"):
                raise _Bad(93000, "invalid webhook url")
            return
        token = url.query.get("access_token")
        if not token:
            raise _Bad(41001, "access_token missing")
        if token != SANDBOX_TOKEN:
            raise _Bad(40014, "invalid access_token")

    def _check_agent(self, body: Mapping[str, Any]) -> None:
        agent = body.get("agentid")
        if not isinstance(agent, int) or isinstance(agent, bool):
            raise _Bad(40056, "invalid agentid")
        if self._agent_id is not None and agent != self._agent_id:
            raise _Bad(40056, "invalid agentid")

    # -- handlers ----------------------------------------------------------------------------

    def _message_send(self, body: dict[str, Any]) -> Answer:
        if not any(body.get(k) for k in ("touser", "toparty", "totag")):
            raise _Bad(81013, "user & party & tag all invalid")
        self._check_agent(body)
        msgtype = body.get("msgtype")
        if msgtype not in _MSGTYPES or not isinstance(body.get(msgtype), dict):
            raise _Bad(40008, "invalid message type")
        payload = body[msgtype]
        if msgtype in ("text", "markdown"):
            _text(payload.get("content"), 2048)
        answer: Answer = {"invaliduser": "", "msgid": "sandbox-" + secrets.token_hex(8)}
        if msgtype == "template_card":
            if "card_type" not in payload:
                raise _Bad(40058, "template_card.card_type missing")
            if payload["card_type"] in _INTERACTIVE and not payload.get("task_id"):
                raise _Bad(40058, "template_card.task_id missing")
            answer["response_code"] = "sandbox-rc-" + secrets.token_hex(8)
        if body.get("enable_duplicate_check") == 1 and self._duplicate(body):
            answer["_recorded"] = False  # WeCom answers 0 but delivers it once
        return answer

    def _duplicate(self, body: Mapping[str, Any]) -> bool:
        """Same JSON within ``duplicate_check_interval`` (this process only): not delivered again."""
        now = self._clock()
        interval = body.get("duplicate_check_interval", 1800)
        if not isinstance(interval, int) or not 0 < interval <= _MAX_DUP_INTERVAL:
            interval = 1800
        if len(self._dup_seen) > 1024:  # bounded: forget what no interval can still match
            horizon = now - _MAX_DUP_INTERVAL
            self._dup_seen = {k: t for k, t in self._dup_seen.items() if t > horizon}
        key = json.dumps(body, sort_keys=True, ensure_ascii=False)
        seen = self._dup_seen.get(key)
        if seen is not None and now - seen < interval:
            return True
        self._dup_seen[key] = now
        return False

    def _update_card(self, body: dict[str, Any]) -> Answer:
        _need_str(body, "response_code")
        self._check_agent(body)
        if "button" not in body and "template_card" not in body:
            raise _Bad(40058, "button or template_card required")
        return {"invaliduser": []}

    def _sync_msg(self, body: dict[str, Any]) -> Answer:
        kfid = body.get("open_kfid")
        if not kfid or not isinstance(kfid, str):
            raise _Bad(95000, "invalid open_kfid")
        limit = body.get("limit", 1000)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
            raise _Bad(40058, "invalid limit")
        cursor = body.get("cursor", "")
        if not isinstance(cursor, str):
            raise _Bad(40058, "invalid cursor")
        # Nobody writes to a sandbox customer-service account: always an empty, final page.
        return {"next_cursor": cursor, "has_more": 0, "msg_list": [], "_recorded": False}

    def _kf_message(self, body: Mapping[str, Any]) -> str:
        msgtype = body.get("msgtype")
        if not isinstance(msgtype, str) or not isinstance(body.get(msgtype), dict):
            raise _Bad(40058, "msgtype body missing")
        if msgtype == "text":
            _text(body[msgtype].get("content"), 2048)
        msgid = body.get("msgid")
        return msgid if isinstance(msgid, str) and msgid else "sandbox-" + secrets.token_hex(8)

    def _kf_send(self, body: dict[str, Any]) -> Answer:
        _need_str(body, "touser")
        if not body.get("open_kfid"):
            raise _Bad(95000, "invalid open_kfid")
        return {"msgid": self._kf_message(body)}

    def _kf_send_on_event(self, body: dict[str, Any]) -> Answer:
        _need_str(body, "code")
        return {"msgid": self._kf_message(body)}

    def _state_get(self, body: dict[str, Any]) -> Answer:
        key = (_need_str(body, "open_kfid"), _need_str(body, "external_userid"))
        state, servicer = self._states.get(key, (0, ""))
        return {"service_state": state, "servicer_userid": servicer}

    def _state_trans(self, body: dict[str, Any]) -> Answer:
        key = (_need_str(body, "open_kfid"), _need_str(body, "external_userid"))
        state = body.get("service_state")
        if not isinstance(state, int) or isinstance(state, bool) or state not in range(5):
            raise _Bad(40058, "invalid service_state")
        servicer = body.get("servicer_userid")
        if state == 3 and not servicer:
            raise _Bad(40058, "servicer_userid required")
        self._states[key] = (state, str(servicer or ""))
        return {"msg_code": "sandbox-mc-" + secrets.token_hex(4)} if state in (2, 3, 4) else {}

    def _webhook(self, body: dict[str, Any]) -> Answer:
        msgtype = body.get("msgtype")
        if msgtype not in ("text", "markdown") or not isinstance(body.get(msgtype), dict):
            raise _Bad(40008, "invalid message type")
        _text(body[msgtype].get("content"), 2048 if msgtype == "text" else 4096)
        return {}


def _need_str(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise _Bad(40058, f"{name} missing")
    return value


def _text(content: object, limit: int) -> None:
    if not isinstance(content, str) or not content:
        raise _Bad(44004, "empty content")
    if len(content.encode()) > limit:
        raise _Bad(45002, "content size out of limit")
