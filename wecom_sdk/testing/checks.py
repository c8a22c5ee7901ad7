"""The pieces every emulated endpoint is made of: a refusal, an acceptance, and the shared checks.

An endpoint is a function ``(settings, state, body) -> Accepted`` that raises :class:`Refusal`
with WeCom's errcode. Real errcodes where the protocol doc gives them; documented choices
elsewhere: 40056 agentid, 44004 empty text, 45002 content too long, 40058 other missing or invalid
fields.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .settings import EmulatorSettings
from .state import EmulatorState

__all__ = [
    "Accepted",
    "Endpoint",
    "Refusal",
    "check_agent",
    "check_text",
    "made_up_id",
    "need_str",
]


class Refusal(Exception):
    """WeCom's answer to a request it refuses: ``{"errcode": errcode, "errmsg": errmsg}``."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode, self.errmsg = errcode, errmsg


@dataclass(frozen=True, slots=True)
class Accepted:
    """An accepted request: the answer's fields beyond errcode/errmsg, and whether WeCom
    answered ok without delivering it again (see :attr:`Call.repeat`)."""

    fields: dict[str, Any] = field(default_factory=dict)
    repeat: bool = False


Endpoint = Callable[[EmulatorSettings, EmulatorState, dict[str, Any]], Accepted]


def need_str(body: Mapping[str, Any], name: str) -> str:
    """A required non-empty string field (else 40058)."""
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise Refusal(40058, f"{name} missing")
    return value


def check_text(content: object, limit: int) -> None:
    """Text content: non-empty (else 44004) and at most ``limit`` UTF-8 bytes (else 45002)."""
    if not isinstance(content, str) or not content:
        raise Refusal(44004, "empty content")
    if len(content.encode()) > limit:
        raise Refusal(45002, "content size out of limit")


def check_agent(settings: EmulatorSettings, body: Mapping[str, Any]) -> None:
    """``agentid`` is a JSON integer, and the app's own when one is configured (else 40056)."""
    agent = body.get("agentid")
    if not isinstance(agent, int) or isinstance(agent, bool):
        raise Refusal(40056, "invalid agentid")
    if settings.agent_id is not None and agent != settings.agent_id:
        raise Refusal(40056, "invalid agentid")


def made_up_id(settings: EmulatorSettings, kind: str) -> str:
    """A fresh id WeCom would hand out (``msg-…``, ``rc-…``), with the settings' prefix."""
    return f"{settings.id_prefix}{kind}-{secrets.token_hex(6)}"
