"""Who is asking: the review web's login gate, its cookies, CSRF check and role check.

:func:`auth_middleware` runs on every request of the sub-app except the static files:

- the login page is open; a POST to it must carry the pre-login CSRF token (``monitor.review.csrf``);
- every other page needs a live session whose account still exists and is enabled, looked up
  afresh on each request (so disabling an account or changing its role applies at once). Without
  one, a GET is redirected to ``<path>/login?next=<the page>`` and anything else gets 403;
- a POST (any method but GET/HEAD/OPTIONS) must carry the session's CSRF token, else 403;
- then ``request[REVIEWER]`` and ``request[CSRF_TOKEN]`` are set for the handler.

The client address (:func:`client_address`) is ``request.remote``: behind a reverse proxy that is
the proxy's address, so the per-address lockout and the audit rows name the proxy. Trusting
``X-Forwarded-For`` would need a configured list of trusted proxies, which is out of scope here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web
from aiohttp.typedefs import Handler
from redis.exceptions import RedisError

from monitor.archive.audit import AuditEvent
from monitor.review.csrf import check_form_token
from monitor.review.headers import STATIC_ROUTE
from monitor.review.keys import (
    CSRF_TOKEN,
    REVIEW_SERVICES,
    REVIEW_SETTINGS,
    REVIEWER,
    SESSION_TOKEN,
    Reviewer,
)
from monitor.review.services import ReviewServices
from monitor.review.settings import ReviewSettings

__all__ = [
    "LOGIN_COOKIE",
    "LOGIN_ROUTE",
    "SESSION_COOKIE",
    "auth_middleware",
    "client_address",
    "cookie_options",
    "current_reviewer",
    "login_url",
    "require_admin",
    "safe_next",
    "web_audit_event",
]

SESSION_COOKIE = "sentinel_review"
"""The session token's cookie."""
LOGIN_COOKIE = "sentinel_review_login"
"""The login form's double-submit CSRF cookie."""
LOGIN_ROUTE = "review_login"
"""Name of the login page's routes (GET and POST): open without a session."""
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def client_address(request: web.Request) -> str:
    """The peer's address (``request.remote``; behind a proxy, the proxy's: see the module doc)."""
    return request.remote or ""


def services_of(request: web.Request) -> ReviewServices:
    return request.config_dict[REVIEW_SERVICES]


def settings_of(request: web.Request) -> ReviewSettings:
    return request.config_dict[REVIEW_SETTINGS]


def current_reviewer(request: web.Request) -> Reviewer:
    """The request's reviewer (set by :func:`auth_middleware` on every page but the login)."""
    return request[REVIEWER]


def require_admin(request: web.Request) -> Reviewer:
    """The request's reviewer if an admin, else 403 (account management, the audit log)."""
    reviewer = current_reviewer(request)
    if not reviewer.is_admin:
        raise web.HTTPForbidden(text="只有管理员可以访问此页面。")
    return reviewer


def web_audit_event(
    request: web.Request,
    action: str,
    *,
    actor: str,
    target: str = "",
    detail: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """An audit row for an action taken in the review web now, from this request's address."""
    return AuditEvent(
        at=services_of(request).clock(),
        actor=actor,
        source="web",
        action=action,
        target=target,
        detail=dict(detail or {}),
        address=client_address(request),
    )


def cookie_options(request: web.Request) -> dict[str, Any]:
    """``set_cookie`` options for our cookies: ``HttpOnly``, ``SameSite=Lax``, the mount path,
    and ``Secure`` per ``secure_cookie`` (``auto``: the request came over TLS, directly or as
    ``X-Forwarded-Proto: https``)."""
    settings = settings_of(request)
    if settings.secure_cookie == "auto":
        forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        secure = request.secure or forwarded == "https"
    else:
        secure = settings.secure_cookie == "always"
    return {"path": settings.path, "httponly": True, "samesite": "Lax", "secure": secure}


def safe_next(value: str | None, base: str) -> str:
    """``value`` if it is a path of this review web (``<base>/...``), else ``<base>/``.

    Only a same-site relative path is accepted: no scheme, no host (``//evil``), no backslashes
    or control characters, no ``.``/``..`` segments (also percent-encoded) that could climb out.
    """
    home = f"{base}/"
    if not value or not value.startswith(home):
        return home
    if "\\" in value or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        return home
    path = unquote(value.split("?", 1)[0].split("#", 1)[0])
    if path.startswith("//") or any(seg in (".", "..") for seg in path.split("/")):
        return home
    return value


def login_url(base: str, next_path: str | None = None) -> str:
    """``<base>/login``, with ``?next=`` when given."""
    url = f"{base}/login"
    return f"{url}?next={quote(next_path, safe='/')}" if next_path else url


async def _session_reviewer(request: web.Request) -> tuple[Reviewer, str, str] | None:
    """(reviewer, csrf token, session token) of the request's live session, or None."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    services = services_of(request)
    session = await services.sessions.resume(token)
    if session is None:
        return None
    account = await services.accounts.get(session.username)
    if account is None or account.disabled:
        await services.sessions.end(token)
        return None
    return Reviewer(username=account.username, role=account.role), session.csrf_token, token


async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    name = request.match_info.route.name
    if name == STATIC_ROUTE:
        return await handler(request)
    if name == LOGIN_ROUTE:
        if request.method not in _SAFE_METHODS:
            await check_form_token(request, request.cookies.get(LOGIN_COOKIE, ""))
        return await handler(request)
    found = await _session_reviewer(request)
    if found is None:
        base = settings_of(request).path
        if request.method in _SAFE_METHODS:
            out: web.HTTPException = web.HTTPFound(login_url(base, request.rel_url.path_qs))
        else:
            out = web.HTTPForbidden(text="请先登录。")
        if SESSION_COOKIE in request.cookies:
            out.del_cookie(SESSION_COOKIE, path=base)
        raise out
    reviewer, csrf_token, token = found
    if request.method not in _SAFE_METHODS:
        await check_form_token(request, csrf_token)
    request[REVIEWER] = reviewer
    request[CSRF_TOKEN] = csrf_token
    request[SESSION_TOKEN] = token
    return await handler(request)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The login gate (see the module doc); Redis failing means 503, not a login page."""
    try:
        return await _guard(request, handler)
    except RedisError as exc:
        raise web.HTTPServiceUnavailable(text="登录服务暂时不可用，请稍后再试。") from exc
