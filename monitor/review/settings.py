"""The review web's settings, as ``bot`` hands them over (``monitor`` never imports ``bot``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ReviewSettings"]


@dataclass(frozen=True, slots=True)
class ReviewSettings:
    """``[review]`` and what else the review web needs from the configuration."""

    path: str = "/review"
    """Where the sub-app is mounted; login at ``<path>/login``."""
    idle_timeout_s: int = 1800
    """A session unused this long is over (the reviewer logs in again)."""
    session_max_age_s: int = 12 * 3600
    """A session is over this long after login, used or not."""
    secure_cookie: str = "auto"
    """``auto``: the session cookie is ``Secure`` when the request came over TLS (directly or as
    ``X-Forwarded-Proto: https`` from a proxy); ``always``; ``never`` (plain-http test setups)."""
    lockout_failures: int = 5
    """Failed logins (per account, and per client address) that lock logins out..."""
    lockout_window_s: int = 900
    """...when they fall within this many seconds; the lock lifts as they age out."""
    context_messages: int = 5
    """Messages shown before and after each hit on a conversation page (more on demand)."""
    page_size: int = 50
    """Cases per queue page."""
    escalate_to: tuple[str, ...] = ()
    """WeCom userids a reviewer's 升级 sends the case to (``[alerts].escalate_to``, else the
    managers)."""
    media_dir: str = ""
    """The conversation archive's media store (``[msgaudit].media_dir``; "": no media served)."""
    rule_paths: tuple[str, ...] = ()
    """``[rules].paths``: where the allow-list pages find (and admins change) a group's file."""
    rules_reload_s: float = 2.0
    """``[rules].reload_interval_s``: how soon every worker picks up a changed rule file."""
    pseudonymise: bool = False
    """Show customers' ids and names as pseudonyms until a reviewer reveals one, with a reason
    (``monitor.review.pseudonyms``)."""
    pseudonym_key: str = ""
    """The pseudonyms' HMAC key; "": a random key generated once and kept in the database."""
    reveal_minutes: int = 240
    """How long a reviewer's reveal of one customer lasts."""
    sample_rate: float = 0.0
    """Share (0..1) of each staff member's conversations without hits in an ISO week that is
    drawn for review (抽检, ``monitor.review.sampling``); 0 = off."""
