"""What the WeCom emulator remembers between calls: tokens, duplicates, kf queues and sessions,
interception rules, and the members and customers the contact reads answer.

Every time comes from the caller (the settings' ``clock`` or ``wall``), so the state is plain data
plus the transitions WeCom makes; the request checks live in the endpoint modules.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .records import KfDelivery

__all__ = ["MAX_DUP_INTERVAL_S", "EmulatorState", "KfKey"]

KF_TOKEN_LIFE_S = 600  # a kf_msg_or_event pull token lives 10 min
WELCOME_CODE_LIFE_S = 20  # an enter_session welcome_code lives 20 s
MAX_DUP_INTERVAL_S = 4 * 3600  # WeCom's largest duplicate_check_interval
_DUP_PRUNE_MIN = 1024

#: A kf customer: (open_kfid, external_userid).
KfKey = tuple[str, str]


@dataclass(eq=False)
class EmulatorState:
    """WeCom's memory of one corp and app, as the emulator keeps it."""

    #: access_token -> expiry (``clock`` seconds; ``math.inf`` for a constant token).
    tokens: dict[str, float] = field(default_factory=dict)
    #: The token ``gettoken`` hands out while it is valid.
    current_token: str | None = None
    #: Successful ``gettoken`` calls.
    token_fetches: int = 0
    #: ``message/send`` JSON with the duplicate check on -> when it was last delivered.
    dup_seen: dict[str, float] = field(default_factory=dict)
    _dup_prune_at: int = _DUP_PRUNE_MIN
    #: Items queued for ``kf/sync_msg``, per open_kfid; a cursor is an offset into the list.
    kf_queue: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Session state and servicer per customer (state 0 and no servicer when absent).
    sessions: dict[KfKey, tuple[int, str]] = field(default_factory=dict)
    #: (open_kfid, msgid) of every kf message delivered (WeCom never delivers a msgid twice).
    kf_msgids: set[KfKey] = field(default_factory=set)
    #: When each customer last wrote (``wall``): the start of its 48 h window.
    kf_last_customer: dict[KfKey, float] = field(default_factory=dict)
    #: API messages sent in each customer's current window (at most 5).
    kf_window_sends: dict[KfKey, int] = field(default_factory=dict)
    #: Pull token -> (open_kfid, expiry).
    kf_pull_tokens: dict[str, tuple[str, float]] = field(default_factory=dict)
    #: send_msg_on_event code -> (open_kfid, external_userid, expiry).
    kf_codes: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    #: Times of recent token-less ``kf/sync_msg`` calls, per open_kfid.
    kf_tokenless: dict[str, list[float]] = field(default_factory=dict)
    #: Every kf message delivered, in order.
    kf_deliveries: list[KfDelivery] = field(default_factory=list)
    #: kf sends refused by the kf rules: (path, errcode, body).
    kf_refused: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    #: kf sends answered ok without delivering (msgid already delivered).
    kf_duplicates: int = 0
    #: Chat interception rules (管理聊天敏感词) by rule_id, as ``get_intercept_rule`` shows them.
    intercept_rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Members (通讯录) by lower-cased UserID (WeCom ignores case), as ``user/get`` answers them.
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Customers by external_userid: ``{"external_contact": {...}, "follow_user": [...]}`` as
    #: ``externalcontact/get`` answers them.
    external_contacts: dict[str, dict[str, Any]] = field(default_factory=dict)

    # -- access tokens -----------------------------------------------------------------------
    def keep_token(self, token: str) -> None:
        """Make ``token`` the current one, valid forever."""
        self.tokens[token] = math.inf
        self.current_token = token

    def issue_token(self, now: float, expires_in: int, constant: str | None) -> tuple[str, int]:
        """The current token if still valid, else a new one; with the seconds it has left."""
        token = self.current_token
        if token is None or self.tokens.get(token, 0) <= now:
            token = self.current_token = constant or "tok-" + secrets.token_hex(8)
            self.tokens[token] = now + expires_in
        self.token_fetches += 1
        left = self.tokens[token] - now
        return token, expires_in if math.isinf(left) else round(left)

    def revoke_token(self) -> str | None:
        """Invalidate the current token early; returns it."""
        revoked, self.current_token = self.current_token, None
        if revoked:
            self.tokens.pop(revoked, None)
        return revoked

    def expire_tokens(self, now: float) -> None:
        """Make every issued token expired."""
        for token in self.tokens:
            self.tokens[token] = now - 1
        self.current_token = None

    # -- message/send duplicate check --------------------------------------------------------
    def seen_within(self, key: str, now: float, interval: float) -> bool:
        """Whether ``key`` was delivered less than ``interval`` ago; if not, note it delivered now."""
        if len(self.dup_seen) > self._dup_prune_at:
            # Forget what no interval can still match; the next prune waits for twice as many
            # keys, so a long run of distinct messages costs O(1) per call.
            horizon = now - MAX_DUP_INTERVAL_S
            self.dup_seen = {k: t for k, t in self.dup_seen.items() if t > horizon}
            self._dup_prune_at = max(_DUP_PRUNE_MIN, 2 * len(self.dup_seen))
        seen = self.dup_seen.get(key)
        if seen is not None and now - seen < interval:
            return True
        self.dup_seen[key] = now
        return False

    # -- 微信客服 -------------------------------------------------------------------------------
    def queue_kf(self, open_kfid: str, items: Iterable[Mapping[str, Any]], now: float) -> None:
        """Queue items for ``kf/sync_msg``; a customer message (origin 3) opens a new window of
        5 messages for 48 h and puts an ended session (state 4) back to new (0), as WeCom does."""
        queued = [dict(i) for i in items]
        self.kf_queue.setdefault(open_kfid, []).extend(queued)
        for item in queued:
            user = item.get("external_userid")
            if item.get("origin") == 3 and item.get("msgtype") != "event" and user:
                key = (open_kfid, str(user))
                self.kf_last_customer[key] = now
                self.kf_window_sends[key] = 0
                if self.session(key)[0] == 4:
                    self.sessions[key] = (0, "")

    def session(self, key: KfKey) -> tuple[int, str]:
        """A customer's (service_state, servicer_userid)."""
        return self.sessions.get(key, (0, ""))

    def issue_pull_token(self, open_kfid: str, now: float) -> str:
        """A pull token as a kf_msg_or_event callback carries it."""
        token = "kft-" + secrets.token_hex(8)
        self.kf_pull_tokens[token] = (open_kfid, now + KF_TOKEN_LIFE_S)
        return token

    def issue_welcome_code(self, open_kfid: str, user: str, now: float) -> str:
        """A single-use welcome_code for an enter_session event."""
        code = "wc-" + secrets.token_hex(8)
        self.kf_codes[code] = (open_kfid, user, now + WELCOME_CODE_LIFE_S)
        return code

    def deliver(
        self, key: KfKey, msgid: str, body: Mapping[str, Any], *, via: str, now: float
    ) -> None:
        """Note a kf message delivered to a customer."""
        open_kfid, user = key
        self.kf_msgids.add((open_kfid, msgid))
        msgtype = str(body["msgtype"])
        content = dict(body[msgtype])
        self.kf_deliveries.append(KfDelivery(open_kfid, user, msgid, msgtype, content, via, now))
