"""Typed state of the review sub-app and the per-request values its middlewares set."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from monitor.review.services import ReviewServices
from monitor.review.settings import ReviewSettings

__all__ = [
    "CSRF_TOKEN",
    "REVIEWER",
    "REVIEW_SERVICES",
    "REVIEW_SETTINGS",
    "SESSION_TOKEN",
    "Reviewer",
]

REVIEW_SERVICES = web.AppKey("review_services", ReviewServices)
"""Set on the parent (bot) app; handlers read it with ``request.config_dict[REVIEW_SERVICES]``."""
REVIEW_SETTINGS = web.AppKey("review_settings", ReviewSettings)
"""Set on the review sub-app by ``create_review_app``: its mount path and its rules."""


@dataclass(frozen=True, slots=True)
class Reviewer:
    """The logged-in account of a request."""

    username: str
    role: str
    """``monitor.review.models.Role``: ``reviewer`` or ``admin``."""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


REVIEWER = web.RequestKey("reviewer", Reviewer)
"""Request key: the :class:`Reviewer` of an authenticated request (set by the auth middleware)."""
CSRF_TOKEN = web.RequestKey("csrf_token", str)
"""Request key: the session's CSRF token, which every form posts back as ``csrf_token``."""
SESSION_TOKEN = web.RequestKey("session_token", str)
"""Request key: the session cookie's token of an authenticated request (logout ends it)."""
