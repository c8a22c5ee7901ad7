"""FakeWeCom: an aiohttp app that answers like the WeCom server API, for client tests.

Run it under ``aiohttp_server(fake.app)``; point the client at ``server.make_url("/cgi-bin/")``.
Real errcodes where the protocol doc gives them (40001/40013/40014/41001/42001/45009/81013/95000);
documented choices elsewhere: 47001 body not JSON, 40008 unknown msgtype, 40056 agentid not int,
44004 empty text, 45002 content too long, 40058 other missing/invalid fields, 93000 bad robot key.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["Call", "FakeWeCom"]

Handler = Callable[[dict[str, Any]], dict[str, Any]]
MSGTYPES = {
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
INTERACTIVE = {"button_interaction", "vote_interaction", "multiple_interaction"}


@dataclass(frozen=True)
class Call:
    """One accepted API call: path under /cgi-bin/, JSON body, and the token (or robot key) used."""

    path: str
    body: dict[str, Any]
    token: str


class _Bad(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode, self.errmsg = errcode, errmsg


def _norm(path: str) -> str:
    return path.removeprefix("/").removeprefix("cgi-bin/")


@dataclass
class FakeWeCom:
    """The fake's state; ``app`` is the aiohttp application. Times use ``clock`` (monotonic)."""

    corp_id: str = "wwcorp"
    secret: str = "s3cret-app-secret"
    robot_keys: set[str] = field(default_factory=lambda: {"robot-key-1"})
    clock: Callable[[], float] = time.monotonic
    expires_in: int = 7200
    token_fetches: int = 0
    calls: list[Call] = field(default_factory=list)
    current_token: str | None = None
    _tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry
    _errors: dict[str, list[int]] = field(default_factory=dict)
    _http500: dict[str, int] = field(default_factory=dict)
    _delays: dict[str, float] = field(default_factory=dict)
    _dup_seen: dict[str, float] = field(default_factory=dict)
    _kf_queue: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _states: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)

    # -- scripting ---------------------------------------------------------------------------
    def fail_next(self, path: str, errcode: int, times: int = 1) -> None:
        """Answer the next ``times`` calls to ``path`` with ``errcode`` (after the token check)."""
        self._errors.setdefault(_norm(path), []).extend([errcode] * times)

    def http_500(self, path: str, times: int = 1) -> None:
        """Answer the next ``times`` calls to ``path`` with HTTP 500."""
        self._http500[_norm(path)] = self._http500.get(_norm(path), 0) + times

    def delay(self, path: str, seconds: float) -> None:
        """Sleep ``seconds`` before answering every call to ``path`` (gettoken included)."""
        self._delays[_norm(path)] = seconds

    def revoke_token(self) -> str | None:
        """Invalidate the current token early (later calls with it get 40014); returns it."""
        revoked, self.current_token = self.current_token, None
        if revoked:
            self._tokens.pop(revoked, None)
        return revoked

    def expire_tokens(self) -> None:
        """Make every issued token expired (later calls get 42001)."""
        self._tokens = dict.fromkeys(self._tokens, self.clock() - 1)
        self.current_token = None

    def add_kf_messages(self, open_kfid: str, items: Iterable[Mapping[str, Any]]) -> None:
        """Queue messages for ``kf/sync_msg`` on ``open_kfid``."""
        self._kf_queue.setdefault(open_kfid, []).extend(dict(i) for i in items)

    def calls_to(self, path: str) -> list[Call]:
        """Accepted calls to ``path``."""
        return [c for c in self.calls if c.path == _norm(path)]

    # -- the app -----------------------------------------------------------------------------
    @property
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self._gettoken)
        routes: dict[str, Handler] = {
            "message/send": self._message_send,
            "message/update_template_card": self._update_card,
            "kf/sync_msg": self._sync_msg,
            "kf/send_msg": self._kf_send,
            "kf/send_msg_on_event": self._kf_send_on_event,
            "kf/service_state/get": self._state_get,
            "kf/service_state/trans": self._state_trans,
            "webhook/send": self._webhook,
        }
        for path, handler in routes.items():
            app.router.add_post(f"/cgi-bin/{path}", self._endpoint(path, handler))
        return app

    async def _prelude(self, path: str) -> web.Response | None:
        if path in self._delays:
            await asyncio.sleep(self._delays[path])
        if self._http500.get(path):
            self._http500[path] -= 1
            return web.Response(status=500, text="internal error")
        return None

    async def _gettoken(self, request: web.Request) -> web.Response:
        if (early := await self._prelude("gettoken")) is not None:
            return early
        q = request.query
        if not q.get("corpid"):
            return _err(41002, "corpid missing")
        if q["corpid"] != self.corp_id:
            return _err(40013, "invalid corpid")
        if not q.get("corpsecret"):
            return _err(41004, "corpsecret missing")
        if q["corpsecret"] != self.secret:
            return _err(40001, "invalid credential")
        self.token_fetches += 1
        now = self.clock()
        token = self.current_token
        if token is None or self._tokens.get(token, 0) <= now:
            token = self.current_token = "tok-" + secrets.token_hex(8)
            self._tokens[token] = now + self.expires_in
        remaining = round(self._tokens[token] - now)
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": remaining}
        )

    def _endpoint(self, path: str, handler: Handler) -> Callable[[web.Request], Any]:
        async def serve(request: web.Request) -> web.Response:
            if (early := await self._prelude(path)) is not None:
                return early
            cred = request.query.get("key" if path == "webhook/send" else "access_token", "")
            try:
                self._check_credential(path, cred)
                if queued := self._errors.get(path):
                    code = queued.pop(0)
                    return _err(code, f"scripted errcode {code}")
                try:
                    body = json.loads(await request.text())
                except ValueError:
                    raise _Bad(47001, "data format error") from None
                if not isinstance(body, dict):
                    raise _Bad(47001, "data format error")
                answer = handler(body)
            except _Bad as bad:
                return _err(bad.errcode, bad.errmsg)
            if not answer.pop("_not_recorded", False):
                self.calls.append(Call(path, body, cred))
            return web.json_response({"errcode": 0, "errmsg": "ok", **answer})

        return serve

    def _check_credential(self, path: str, cred: str) -> None:
        if path == "webhook/send":
            if cred not in self.robot_keys:
                raise _Bad(93000, "invalid webhook url")
            return
        if not cred:
            raise _Bad(41001, "access_token missing")
        if cred not in self._tokens:
            raise _Bad(40014, "invalid access_token")
        if self._tokens[cred] <= self.clock():
            raise _Bad(42001, "access_token expired")

    # -- handlers ----------------------------------------------------------------------------
    def _message_send(self, body: dict[str, Any]) -> dict[str, Any]:
        if not any(body.get(k) for k in ("touser", "toparty", "totag")):
            raise _Bad(81013, "user & party & tag all invalid")
        if not isinstance(body.get("agentid"), int) or isinstance(body.get("agentid"), bool):
            raise _Bad(40056, "invalid agentid")
        msgtype = body.get("msgtype")
        if msgtype not in MSGTYPES or not isinstance(body.get(msgtype), dict):
            raise _Bad(40008, "invalid message type")
        payload = body[msgtype]
        if msgtype in ("text", "markdown"):
            _text(payload.get("content"), 2048)
        answer: dict[str, Any] = {"invaliduser": "", "msgid": "msg-" + secrets.token_hex(6)}
        if msgtype == "template_card":
            if "card_type" not in payload:
                raise _Bad(40058, "template_card.card_type missing")
            if payload["card_type"] in INTERACTIVE and not payload.get("task_id"):
                raise _Bad(40058, "template_card.task_id missing")
            answer["response_code"] = "rc-" + secrets.token_hex(6)
        if body.get("enable_duplicate_check") == 1:
            # Same JSON within the interval is delivered once, yet WeCom still answers 0.
            key, now = json.dumps(body, sort_keys=True), self.clock()
            interval = body.get("duplicate_check_interval", 1800)
            if now - self._dup_seen.get(key, -1e18) < interval:
                answer["_not_recorded"] = True
            else:
                self._dup_seen[key] = now
        return answer

    def _update_card(self, body: dict[str, Any]) -> dict[str, Any]:
        _need_str(body, "response_code")
        if not isinstance(body.get("agentid"), int):
            raise _Bad(40056, "invalid agentid")
        if "button" not in body and "template_card" not in body:
            raise _Bad(40058, "button or template_card required")
        return {"invaliduser": []}

    def _sync_msg(self, body: dict[str, Any]) -> dict[str, Any]:
        kfid = body.get("open_kfid")
        if not kfid or not isinstance(kfid, str):
            raise _Bad(95000, "invalid open_kfid")
        limit = body.get("limit", 1000)
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise _Bad(40058, "invalid limit")
        cursor = body.get("cursor") or "0"
        if not isinstance(cursor, str) or not cursor.isdigit():
            raise _Bad(40058, "invalid cursor")
        queue, start = self._kf_queue.get(kfid, []), int(cursor)
        page = queue[start : start + limit]
        end = start + len(page)
        return {"next_cursor": str(end), "has_more": int(end < len(queue)), "msg_list": page}

    def _kf_body(self, body: dict[str, Any]) -> str:
        msgtype = body.get("msgtype")
        if not isinstance(msgtype, str) or not isinstance(body.get(msgtype), dict):
            raise _Bad(40058, "msgtype body missing")
        if msgtype == "text":
            _text(body[msgtype].get("content"), 2048)
        msgid = body.get("msgid")
        return msgid if isinstance(msgid, str) and msgid else "kf-" + secrets.token_hex(6)

    def _kf_send(self, body: dict[str, Any]) -> dict[str, Any]:
        _need_str(body, "touser")
        if not body.get("open_kfid"):
            raise _Bad(95000, "invalid open_kfid")
        return {"msgid": self._kf_body(body)}

    def _kf_send_on_event(self, body: dict[str, Any]) -> dict[str, Any]:
        _need_str(body, "code")
        return {"msgid": self._kf_body(body)}

    def _state_get(self, body: dict[str, Any]) -> dict[str, Any]:
        key = (_need_str(body, "open_kfid"), _need_str(body, "external_userid"))
        state, servicer = self._states.get(key, (0, ""))
        return {"service_state": state, "servicer_userid": servicer}

    def _state_trans(self, body: dict[str, Any]) -> dict[str, Any]:
        key = (_need_str(body, "open_kfid"), _need_str(body, "external_userid"))
        state = body.get("service_state")
        if not isinstance(state, int) or state not in range(5):
            raise _Bad(40058, "invalid service_state")
        if state == 3 and not body.get("servicer_userid"):
            raise _Bad(40058, "servicer_userid required")
        self._states[key] = (state, str(body.get("servicer_userid", "")))
        return {"msg_code": "mc-" + secrets.token_hex(4)} if state in (2, 3, 4) else {}

    def _webhook(self, body: dict[str, Any]) -> dict[str, Any]:
        msgtype = body.get("msgtype")
        if msgtype not in ("text", "markdown") or not isinstance(body.get(msgtype), dict):
            raise _Bad(40008, "invalid message type")
        _text(body[msgtype].get("content"), 2048 if msgtype == "text" else 4096)
        return {}


def _err(errcode: int, errmsg: str) -> web.Response:
    return web.json_response({"errcode": errcode, "errmsg": errmsg})


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
