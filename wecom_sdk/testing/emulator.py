"""The WeCom emulator's core: one API call in, WeCom's JSON answer out, every call recorded.

Transport-independent: :meth:`WeComEmulator.handle` takes the method, the API path, the query and
the raw body, as any front end receives them. :class:`~wecom_sdk.testing.fake_api.FakeWeCom`
serves it over HTTP (aiohttp); :class:`~wecom_sdk.testing.transport.EmulatorTransport` answers a
:class:`~wecom_sdk.client.WeComClient` in process (the bot's send sandbox). So a request gets the
same answer, and the same record, whichever way it came.

The order of checks is WeCom's: unknown path (HTTP 404) or method (405); scripted delay and HTTP
500; then ``gettoken``'s query (41002/40013 corpid, 41004/40001 corpsecret) or, for the other
endpoints, the credential (41001 missing, 40014 invalid, 42001 expired access_token; 93000 robot
key), a scripted errcode, 47001 for a body that is not a JSON object, and the endpoint's own
checks (:mod:`.message_endpoints`, :mod:`.kf_endpoints`, :mod:`.intercept_endpoints`,
:mod:`.contact_endpoints`). A GET endpoint has no body: its query parameters (the access_token
left out) are handed to it, and recorded, in the body's place.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .checks import Endpoint, Refusal
from .contact_endpoints import CONTACT_ENDPOINTS, CONTACT_GET_PATHS, EXTERNAL_USERID, USERID
from .intercept_endpoints import INTERCEPT_ENDPOINTS, INTERCEPT_GET_PATHS
from .kf_endpoints import KF_ENDPOINTS
from .message_endpoints import MESSAGE_ENDPOINTS
from .records import Call, KfDelivery
from .settings import EmulatorSettings
from .state import EmulatorState

__all__ = ["API_PATHS", "GETTOKEN", "CallHook", "Reply", "WeComEmulator", "norm_path"]

GETTOKEN = "gettoken"
_ENDPOINTS: dict[str, Endpoint] = {
    **MESSAGE_ENDPOINTS,
    **KF_ENDPOINTS,
    **INTERCEPT_ENDPOINTS,
    **CONTACT_ENDPOINTS,
}
#: Endpoints answered over GET without a body (besides gettoken); every other one is a POST.
_GET_PATHS = INTERCEPT_GET_PATHS | CONTACT_GET_PATHS
#: The API endpoints the emulator answers besides gettoken (paths under /cgi-bin/).
API_PATHS = frozenset(_ENDPOINTS)

CallHook = Callable[[Call], Awaitable[None]]


def norm_path(path: str) -> str:
    """``/cgi-bin/message/send`` (or ``message/send``) -> ``message/send``."""
    return path.removeprefix("/").removeprefix("cgi-bin/")


@dataclass(frozen=True, slots=True)
class Reply:
    """What the emulator answers: HTTP 200 with WeCom's JSON, or an HTTP error without one."""

    status: int
    json: dict[str, Any] | None = None


@dataclass(eq=False)
class WeComEmulator(EmulatorSettings):
    """WeCom's server API for one corp and app: settings (the fields inherited from
    :class:`EmulatorSettings`), what WeCom remembers (:attr:`state`), the calls it answered
    (:attr:`history`) and the faults a test scripts."""

    state: EmulatorState = field(default_factory=EmulatorState)
    #: The most calls to each path that were being answered at once.
    max_concurrent: dict[str, int] = field(default_factory=dict)
    _history: deque[Call] = field(init=False, repr=False)
    _errors: dict[str, list[int]] = field(default_factory=dict, init=False, repr=False)
    _http500: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _delays: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    _hooks: dict[str, CallHook] = field(default_factory=dict, init=False, repr=False)
    _inflight: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._history = deque(maxlen=self.history_limit)
        if self.access_token:
            self.state.keep_token(self.access_token)

    # -- what was called ---------------------------------------------------------------------
    @property
    def history(self) -> list[Call]:
        """Every call answered with WeCom's JSON, in order: ``gettoken``, refusals and repeats
        included (the latest ``history_limit`` when set)."""
        return list(self._history)

    @property
    def calls(self) -> list[Call]:
        """Accepted API calls, each delivery once: refusals, repeats WeCom does not deliver again
        and ``gettoken`` (see ``state.token_fetches``) left out."""
        return [c for c in self._history if c.path != GETTOKEN and c.errcode == 0 and not c.repeat]

    def calls_to(self, path: str) -> list[Call]:
        """:attr:`calls` to ``path``."""
        path = norm_path(path)
        return [c for c in self._history if c.path == path and c.errcode == 0 and not c.repeat]

    def in_flight(self, path: str) -> int:
        """Calls to ``path`` being answered right now (delayed or held by a hook)."""
        return self._inflight.get(norm_path(path), 0)

    # -- scripting ---------------------------------------------------------------------------
    def fail_next(self, path: str, errcode: int, times: int = 1) -> None:
        """Answer the next ``times`` calls to ``path`` with ``errcode`` (after the token check)."""
        self._errors.setdefault(norm_path(path), []).extend([errcode] * times)

    def http_500(self, path: str, times: int = 1) -> None:
        """Answer the next ``times`` calls to ``path`` with HTTP 500."""
        path = norm_path(path)
        self._http500[path] = self._http500.get(path, 0) + times

    def delay(self, path: str, seconds: float) -> None:
        """Sleep ``seconds`` before answering every call to ``path`` (gettoken included)."""
        self._delays[norm_path(path)] = seconds

    def on_accepted(self, path: str, hook: CallHook | None) -> None:
        """Await ``hook(call)`` after each accepted call to ``path`` (repeats included) is
        processed and recorded, before answering; None removes the hook."""
        if hook is None:
            self._hooks.pop(norm_path(path), None)
        else:
            self._hooks[norm_path(path)] = hook

    def revoke_token(self) -> str | None:
        """Invalidate the current token early (later calls with it get 40014); returns it."""
        return self.state.revoke_token()

    def expire_tokens(self) -> None:
        """Make every issued token expired (later calls get 42001)."""
        self.state.expire_tokens(self.clock())

    # -- 微信客服 set-up -----------------------------------------------------------------------
    def add_kf_messages(self, open_kfid: str, items: Iterable[Mapping[str, Any]]) -> None:
        """Queue messages for ``kf/sync_msg`` on ``open_kfid``.

        A customer message (origin 3) opens a new 48 h window of 5 messages for its customer
        and puts an ended session (state 4) back to new (0), as WeCom does.
        """
        self.state.queue_kf(open_kfid, items, self.wall())

    def issue_kf_token(self, open_kfid: str) -> str:
        """A pull token as a kf_msg_or_event callback carries it (valid 10 min)."""
        return self.state.issue_pull_token(open_kfid, self.wall())

    def issue_welcome_code(self, open_kfid: str, user: str) -> str:
        """A welcome_code for an enter_session event (single use, valid 20 s)."""
        return self.state.issue_welcome_code(open_kfid, user, self.wall())

    def set_kf_state(self, open_kfid: str, user: str, state: int, servicer: str = "") -> None:
        """Move a session as a servicer (or WeCom) would."""
        self.state.sessions[open_kfid, user] = (state, servicer)

    def kf_state(self, open_kfid: str, user: str) -> int:
        """The session state of a customer (0 when never set)."""
        return self.state.session((open_kfid, user))[0]

    def kf_delivered_to(self, user: str) -> list[KfDelivery]:
        """kf messages delivered to ``user``, in order."""
        return [d for d in self.state.kf_deliveries if d.touser == user]

    # -- 通讯录 and 客户联系 set-up ---------------------------------------------------------------
    def add_member(
        self,
        userid: str,
        name: str,
        *,
        department: Sequence[int] = (1,),
        position: str = "",
        status: int = 1,
        **fields: Any,
    ) -> None:
        """Seed (or replace) a member for ``user/get``; ``fields`` adds more of its answer
        (``alias``, ``mobile``...). ``status``: 1 activated, 2 disabled, 4 not activated, 5 left."""
        if not USERID.fullmatch(userid):
            raise ValueError(f"WeCom issues no UserID like {userid!r}")
        self.state.members[userid.lower()] = {
            "userid": userid,
            "name": name,
            "department": list(department),
            "main_department": department[0] if department else 0,
            "position": position,
            "status": status,
            **fields,
        }

    def add_external_contact(
        self,
        external_userid: str,
        name: str,
        *,
        type: int = 1,
        corp_name: str = "",
        follow_users: Iterable[str | Mapping[str, Any]] = (),
        **fields: Any,
    ) -> None:
        """Seed (or replace) a customer for ``externalcontact/get``.

        Args:
            type: 1 a WeChat user, 2 a WeCom user (only then is ``corp_name`` answered).
            follow_users: The members who added the customer: UserIDs, or whole ``follow_user``
                items. With none, WeCom (and so the emulator) answers 84061.
            fields: More of ``external_contact`` (``avatar``, ``gender``, ``unionid``...).
        """
        if not EXTERNAL_USERID.fullmatch(external_userid):
            raise ValueError(f"WeCom issues no external_userid like {external_userid!r}")
        contact: dict[str, Any] = {
            "external_userid": external_userid,
            "name": name,
            "type": type,
            "avatar": "",
            "gender": 0,
            **fields,
        }
        if type == 2:
            contact.setdefault("corp_name", corp_name)
            contact.setdefault("corp_full_name", corp_name)
        now = int(self.wall())
        follows = [
            dict(f) if isinstance(f, Mapping) else _follow_user(f, now) for f in follow_users
        ]
        self.state.external_contacts[external_userid] = {
            "external_contact": contact,
            "follow_user": follows,
        }

    # -- answering ---------------------------------------------------------------------------
    async def handle(
        self, method: str, path: str, query: Mapping[str, str], body: bytes | str | None
    ) -> Reply:
        """Answer one call as WeCom would and record it.

        Args:
            method: ``GET`` (gettoken) or ``POST`` (every other endpoint).
            path: The API path, with or without ``/cgi-bin/``.
            query: The URL query (access_token, robot key, or gettoken's corpid and corpsecret).
            body: The raw request body (JSON text), None when there is none.
        """
        path = norm_path(path)
        if path != GETTOKEN and path not in _ENDPOINTS:
            return Reply(404)
        if method != ("GET" if path == GETTOKEN or path in _GET_PATHS else "POST"):
            return Reply(405)
        self._inflight[path] = self._inflight.get(path, 0) + 1
        self.max_concurrent[path] = max(self.max_concurrent.get(path, 0), self._inflight[path])
        try:
            if path in self._delays:
                await asyncio.sleep(self._delays[path])
            if self._http500.get(path):
                self._http500[path] -= 1
                return Reply(500)
            if path == GETTOKEN:
                return self._gettoken(query)
            return await self._api_call(path, query, body)
        finally:
            self._inflight[path] -= 1

    def _gettoken(self, query: Mapping[str, str]) -> Reply:
        corp_id, secret = query.get("corpid"), query.get("corpsecret")
        try:
            if not corp_id:
                raise Refusal(41002, "corpid missing")
            if corp_id != self.corp_id:
                raise Refusal(40013, "invalid corpid")
            # With no secret configured any corpsecret passes, an empty one included.
            if secret is None or (self.secret is not None and not secret):
                raise Refusal(41004, "corpsecret missing")
            if self.secret is not None and secret != self.secret:
                raise Refusal(40001, "invalid credential")
        except Refusal as refusal:
            return self._refused(GETTOKEN, {}, "", refusal)
        token, expires_in = self.state.issue_token(self.clock(), self.expires_in, self.access_token)
        answer = {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": expires_in}
        self._history.append(Call(GETTOKEN, {}, "", answer))
        return Reply(200, answer)

    async def _api_call(
        self, path: str, query: Mapping[str, str], raw: bytes | str | None
    ) -> Reply:
        credential = query.get("key" if path == "webhook/send" else "access_token", "")
        body = _query_fields(query) if path in _GET_PATHS else _json_object(raw)
        try:
            self._check_credential(path, credential)
            if queued := self._errors.get(path):
                code = queued.pop(0)
                raise Refusal(code, f"scripted errcode {code}")
            if body is None:
                raise Refusal(47001, "data format error")
            accepted = _ENDPOINTS[path](self, self.state, body)
        except Refusal as refusal:
            return self._refused(path, body or {}, credential, refusal)
        answer = {"errcode": 0, "errmsg": "ok", **accepted.fields}
        call = Call(path, body, credential, answer, accepted.repeat)
        self._history.append(call)
        if (hook := self._hooks.get(path)) is not None:
            await hook(call)
        return Reply(200, answer)

    def _refused(self, path: str, body: dict[str, Any], credential: str, refusal: Refusal) -> Reply:
        answer = {"errcode": refusal.errcode, "errmsg": refusal.errmsg}
        self._history.append(Call(path, body, credential, answer))
        return Reply(200, answer)

    def _check_credential(self, path: str, credential: str) -> None:
        if path == "webhook/send":
            known = self.robot_keys
            if not credential or (known is not None and credential not in known):
                raise Refusal(93000, "invalid webhook url")
            return
        if not credential:
            raise Refusal(41001, "access_token missing")
        expiry = self.state.tokens.get(credential)
        if expiry is None:
            raise Refusal(40014, "invalid access_token")
        if expiry <= self.clock():
            raise Refusal(42001, "access_token expired")


def _query_fields(query: Mapping[str, str]) -> dict[str, Any]:
    """A GET's parameters as its endpoint's body: the first value of each, without the
    access_token (the call's credential, recorded apart)."""
    fields: dict[str, Any] = {}
    for name, value in query.items():
        if name != "access_token":
            fields.setdefault(name, value)
    return fields


def _follow_user(userid: str, now: int) -> dict[str, Any]:
    """A ``follow_user`` item: ``userid`` added the customer ``now``, without remark or tags."""
    return {
        "userid": userid,
        "remark": "",
        "description": "",
        "createtime": now,
        "tags": [],
        "add_way": 0,
        "oper_userid": userid,
    }


def _json_object(raw: bytes | str | None) -> dict[str, Any] | None:
    """The body as a JSON object, None when it is missing or anything else."""
    if not raw:
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
