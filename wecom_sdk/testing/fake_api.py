"""FakeWeCom: an aiohttp app that answers like the WeCom server API, for client tests.

Run it under ``aiohttp_server(fake.app)``; point the client at ``server.make_url("/cgi-bin/")``.
Real errcodes where the protocol doc gives them (40001/40013/40014/41001/42001/45009/81013/95000);
documented choices elsewhere: 47001 body not JSON, 40008 unknown msgtype, 40056 agentid not int,
44004 empty text, 45002 content too long, 40058 other missing/invalid fields, 93000 bad robot key.

``kf_strict=True`` adds WeCom's 微信客服 rules (off by default, so plain client tests can send
anything): ``send_msg`` refuses a 6th message after the customer's latest message, or any once 48 h
have passed (95001, WeCom's code), and a session with a human or ended (state 2/3/4: 95018, our
choice); a msgid already delivered is answered ok and not delivered again; ``send_msg_on_event``
takes only a code the fake issued, once, within its life (welcome_code 20 s; else 40058, our
choice); ``sync_msg`` checks its token (issued, for that account, 10 min: else 95007, WeCom's
"invalid msg token") and without one allows ``kf_tokenless_per_minute`` calls (then 45009).
Deliveries are in ``kf_deliveries``, refusals in ``kf_refused``; kf times use ``wall``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = [
    "KF_OVER_LIMIT",
    "KF_STATE_REFUSES",
    "Call",
    "FakeWeCom",
    "KfDelivery",
    "kf_event",
    "kf_text",
]

Handler = Callable[[dict[str, Any]], dict[str, Any]]
Hook = Callable[[dict[str, Any]], Awaitable[None]]
KF_OVER_LIMIT = 95001  # WeCom: over the 5 messages allowed after a customer message
KF_BAD_MSG_TOKEN = 95007  # WeCom: invalid msg token (sync_msg)
KF_STATE_REFUSES = 95018  # our choice: the session is not with the API (state 2, 3 or 4)
KF_BAD_CODE = 40058  # our choice: a send_msg_on_event code unknown, used or expired
KF_WINDOW_S = 48 * 3600
KF_TOKEN_LIFE_S = 600
WELCOME_CODE_LIFE_S = 20
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


@dataclass(frozen=True)
class KfDelivery:
    """A kf message the fake delivered to a customer."""

    open_kfid: str
    touser: str
    msgid: str
    msgtype: str
    content: dict[str, Any]
    via: str  # "send_msg" or "send_msg_on_event"
    at: float

    @property
    def text(self) -> str:
        """The text content, or a menu's head."""
        return str(self.content.get("content") or self.content.get("head_content") or "")


def kf_text(
    msgid: str,
    user: str,
    content: str,
    *,
    open_kfid: str = "wkSENTINEL",
    origin: int = 3,
    servicer: str = "",
    send_time: int | None = None,
    menu_id: str = "",
) -> dict[str, Any]:
    """A sync_msg text item: from the customer (origin 3) or a servicer (origin 5)."""
    text: dict[str, Any] = {"content": content}
    if menu_id:
        text["menu_id"] = menu_id
    item: dict[str, Any] = {
        "msgid": msgid,
        "open_kfid": open_kfid,
        "external_userid": user,
        "send_time": int(time.time()) if send_time is None else send_time,
        "origin": origin,
        "msgtype": "text",
        "text": text,
    }
    if servicer:
        item["servicer_userid"] = servicer
    return item


def kf_event(
    msgid: str,
    event_type: str,
    *,
    open_kfid: str = "wkSENTINEL",
    user: str = "",
    send_time: int | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A sync_msg system event item (origin 4): account and customer inside ``event``."""
    event: dict[str, Any] = {"event_type": event_type, "open_kfid": open_kfid, **fields}
    if user:
        event["external_userid"] = user
    return {
        "msgid": msgid,
        "send_time": int(time.time()) if send_time is None else send_time,
        "origin": 4,
        "msgtype": "event",
        "event": event,
    }


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
    # 微信客服 rules (kf_strict)
    kf_strict: bool = False
    #: Serve at most this many items per sync_msg page (WeCom may return fewer than ``limit``).
    kf_page_size: int | None = None
    wall: Callable[[], float] = time.time
    kf_tokenless_per_minute: int = 10
    kf_deliveries: list[KfDelivery] = field(default_factory=list)
    kf_refused: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    kf_duplicates: int = 0
    max_concurrent: dict[str, int] = field(default_factory=dict)
    _inflight: dict[str, int] = field(default_factory=dict)
    _hooks: dict[str, Hook] = field(default_factory=dict)
    _kf_msgids: set[tuple[str, str]] = field(default_factory=set)
    _kf_last_customer: dict[tuple[str, str], float] = field(default_factory=dict)
    _kf_window_sends: dict[tuple[str, str], int] = field(default_factory=dict)
    _kf_tokens: dict[str, tuple[str, float]] = field(default_factory=dict)
    _kf_codes: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    _kf_tokenless: dict[str, list[float]] = field(default_factory=dict)

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
        """Queue messages for ``kf/sync_msg`` on ``open_kfid``.

        A customer message (origin 3) opens a new 48 h window of 5 messages for its customer
        and puts an ended session (state 4) back to new (0), as WeCom does.
        """
        queued = [dict(i) for i in items]
        self._kf_queue.setdefault(open_kfid, []).extend(queued)
        for item in queued:
            user = item.get("external_userid")
            if item.get("origin") == 3 and item.get("msgtype") != "event" and user:
                key = (open_kfid, str(user))
                self._kf_last_customer[key] = self.wall()
                self._kf_window_sends[key] = 0
                if self._states.get(key, (0, ""))[0] == 4:
                    self._states[key] = (0, "")

    def issue_kf_token(self, open_kfid: str) -> str:
        """A pull token as a kf_msg_or_event callback carries it (valid 10 min)."""
        token = "kft-" + secrets.token_hex(8)
        self._kf_tokens[token] = (open_kfid, self.wall() + KF_TOKEN_LIFE_S)
        return token

    def issue_welcome_code(self, open_kfid: str, user: str) -> str:
        """A welcome_code for an enter_session event (single use, valid 20 s)."""
        code = "wc-" + secrets.token_hex(8)
        self._kf_codes[code] = (open_kfid, user, self.wall() + WELCOME_CODE_LIFE_S)
        return code

    def set_kf_state(self, open_kfid: str, user: str, state: int, servicer: str = "") -> None:
        """Move a session as a servicer (or WeCom) would."""
        self._states[open_kfid, user] = (state, servicer)

    def kf_state(self, open_kfid: str, user: str) -> int:
        """The session state of a customer (0 when never set)."""
        return self._states.get((open_kfid, user), (0, ""))[0]

    def kf_delivered_to(self, user: str) -> list[KfDelivery]:
        """Messages delivered to ``user``, in order."""
        return [d for d in self.kf_deliveries if d.touser == user]

    def in_flight(self, path: str) -> int:
        """Calls to ``path`` being answered right now (delayed or held by a hook)."""
        return self._inflight.get(_norm(path), 0)

    def on_call(self, path: str, hook: Hook | None) -> None:
        """Await ``hook(body)`` after an accepted call to ``path`` is processed, before answering."""
        if hook is None:
            self._hooks.pop(_norm(path), None)
        else:
            self._hooks[_norm(path)] = hook

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
            self._inflight[path] = self._inflight.get(path, 0) + 1
            self.max_concurrent[path] = max(self.max_concurrent.get(path, 0), self._inflight[path])
            try:
                return await answer(request)
            finally:
                self._inflight[path] -= 1

        async def answer(request: web.Request) -> web.Response:
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
                result = handler(body)
            except _Bad as bad:
                return _err(bad.errcode, bad.errmsg)
            if not result.pop("_not_recorded", False):
                self.calls.append(Call(path, body, cred))
            if (hook := self._hooks.get(path)) is not None:
                await hook(body)
            return web.json_response({"errcode": 0, "errmsg": "ok", **result})

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
        if self.kf_strict:
            self._check_pull_token(kfid, body.get("token"))
        queue, start = self._kf_queue.get(kfid, []), int(cursor)
        if self.kf_page_size is not None:
            limit = min(limit, self.kf_page_size)
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
        user = _need_str(body, "touser")
        kfid = body.get("open_kfid")
        if not kfid or not isinstance(kfid, str):
            raise _Bad(95000, "invalid open_kfid")
        msgid = self._kf_body(body)
        if not self.kf_strict:
            return {"msgid": msgid}
        if (kfid, msgid) in self._kf_msgids:
            self.kf_duplicates += 1  # WeCom does not deliver a msgid twice
            return {"msgid": msgid, "_not_recorded": True}
        key = (kfid, user)
        if self._states.get(key, (0, ""))[0] not in (0, 1):
            self._refuse("kf/send_msg", KF_STATE_REFUSES, body, "session not with the API")
        opened = self._kf_last_customer.get(key)
        if opened is None or self.wall() - opened >= KF_WINDOW_S:
            self._refuse("kf/send_msg", KF_OVER_LIMIT, body, "no customer message in 48 h")
        if self._kf_window_sends.get(key, 0) >= 5:
            self._refuse("kf/send_msg", KF_OVER_LIMIT, body, "over the 5-message limit")
        self._kf_window_sends[key] = self._kf_window_sends.get(key, 0) + 1
        if self._states.get(key, (0, ""))[0] == 0:
            self._states[key] = (1, "")  # an API message puts the customer with the assistant
        self._deliver(kfid, user, msgid, body, "send_msg")
        return {"msgid": msgid}

    def _kf_send_on_event(self, body: dict[str, Any]) -> dict[str, Any]:
        code = _need_str(body, "code")
        msgid = self._kf_body(body)
        if not self.kf_strict:
            return {"msgid": msgid}
        issued = self._kf_codes.pop(code, None)  # single use, whatever happens next
        if issued is None or self.wall() >= issued[2]:
            self._refuse("kf/send_msg_on_event", KF_BAD_CODE, body, "invalid code")
        assert issued is not None
        self._deliver(issued[0], issued[1], msgid, body, "send_msg_on_event")
        return {"msgid": msgid}

    def _deliver(self, kfid: str, user: str, msgid: str, body: dict[str, Any], via: str) -> None:
        self._kf_msgids.add((kfid, msgid))
        msgtype = str(body["msgtype"])
        self.kf_deliveries.append(
            KfDelivery(kfid, user, msgid, msgtype, dict(body[msgtype]), via, self.wall())
        )

    def _refuse(self, path: str, errcode: int, body: dict[str, Any], why: str) -> None:
        self.kf_refused.append((path, errcode, body))
        raise _Bad(errcode, why)

    def _check_pull_token(self, kfid: str, token: object) -> None:
        if token:
            issued = self._kf_tokens.get(str(token))
            if issued is None or issued[0] != kfid or self.wall() >= issued[1]:
                raise _Bad(KF_BAD_MSG_TOKEN, "invalid msg token")
            return
        now = self.wall()
        recent = [t for t in self._kf_tokenless.get(kfid, []) if now - t < 60]
        if len(recent) >= self.kf_tokenless_per_minute:
            raise _Bad(45009, "api freq out of limit (sync_msg without token)")
        self._kf_tokenless[kfid] = [*recent, now]

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
