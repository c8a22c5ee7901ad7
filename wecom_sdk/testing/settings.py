"""The WeCom emulator's settings: which app it plays and which of WeCom's rules it applies.

Two set-ups use it: the test fake (:class:`~wecom_sdk.testing.fake_api.FakeWeCom`, the defaults
below: a known secret and robot key, fresh tokens that expire) and the bot's send sandbox (any
secret and robot key, one constant token, the configured agentid, ids prefixed ``sandbox-``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["EmulatorSettings"]


def _default_robot_keys() -> set[str] | None:
    return {"robot-key-1"}


@dataclass(eq=False)
class EmulatorSettings:
    """The knobs of the emulator; plain attributes, so a test may change one between calls."""

    corp_id: str = "wwcorp"
    #: The app secret ``gettoken`` wants (else 40001); None accepts any, even an empty one.
    secret: str | None = "s3cret-app-secret"
    #: The robot webhook keys ``webhook/send`` accepts (else 93000); None accepts any non-empty key.
    robot_keys: set[str] | None = field(default_factory=_default_robot_keys)
    #: Seconds for access_token expiry and the ``message/send`` duplicate check.
    clock: Callable[[], float] = time.monotonic
    #: Lifetime of an access_token ``gettoken`` hands out, in seconds.
    expires_in: int = 7200
    #: Apply WeCom's 微信客服 rules (5-message budget, session states, pull tokens, codes).
    kf_strict: bool = False
    #: Serve at most this many items per sync_msg page (WeCom may return fewer than ``limit``).
    kf_page_size: int | None = None
    #: Wall-clock seconds for the kf rules and delivery times.
    wall: Callable[[], float] = time.time
    #: ``kf/sync_msg`` calls per account and minute allowed without a pull token (then 45009).
    kf_tokenless_per_minute: int = 10
    #: The app's agentid: when set, ``agentid`` must equal it (else 40056); None takes any int.
    agent_id: int | None = None
    #: One constant access_token, valid from the start and never expiring (so a token any
    #: process cached stays good); None hands out fresh random tokens.
    access_token: str | None = None
    #: Prefix of the ids the emulator makes up (msgid, response_code, msg_code).
    id_prefix: str = ""
    #: Keep only the latest this many calls in the history (None: all of them).
    history_limit: int | None = None
    #: The group chats the app created, which ``appchat/send`` may post to (else 86001); None
    #: takes any non-empty chat id.
    app_chats: set[str] | None = None
