"""``GET|POST <path>/login`` and ``POST <path>/logout``.

A failed login always says 用户名或密码错误, whether the account is unknown, disabled or the
password is wrong, and takes about as long either way (``Accounts.authenticate``). Too many
failures lock logins out per account and per client address (``monitor.review.throttle``).
Every login, failed login, refused locked-out attempt and logout is an audit row (source
``web``, with the client address). A login always starts a new session with a new token.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import Connection

from monitor.archive.audit import record_audit_event
from monitor.review.accounts import mark_login
from monitor.review.auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    client_address,
    cookie_options,
    current_reviewer,
    login_url,
    safe_next,
    services_of,
    settings_of,
    web_audit_event,
)
from monitor.review.csrf import is_token, new_token
from monitor.review.flash import Flash
from monitor.review.keys import SESSION_TOKEN
from monitor.review.render import render_page
from monitor.review.throttle import minutes

__all__ = ["handle_login_get", "handle_login_post", "handle_logout"]

BAD_LOGIN = "用户名或密码错误。"
_MAX_NAME = 64  # longer names are no account's (the column's size); audit rows keep this much


def _login_page(
    request: web.Request,
    *,
    token: str,
    next_path: str,
    username: str = "",
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    context: dict[str, object] = {"csrf_token": token, "next": next_path, "username": username}
    if error:
        context["flashes"] = [Flash("error", error)]  # else the ?done= notice, if any
    response = render_page(request, "login.html", context, status=status)
    response.set_cookie(LOGIN_COOKIE, token, **cookie_options(request))
    return response


def _login_token(request: web.Request) -> str:
    """The browser's pre-login CSRF token, or a new one."""
    token = request.cookies.get(LOGIN_COOKIE)
    return token if is_token(token) else new_token()  # type: ignore[return-value]


async def handle_login_get(request: web.Request) -> web.Response:
    """The login form (the pre-login CSRF cookie is set with it)."""
    base = settings_of(request).path
    return _login_page(
        request, token=_login_token(request), next_path=safe_next(request.query.get("next"), base)
    )


async def handle_login_post(request: web.Request) -> web.StreamResponse:
    """Check the password (the middleware checked the CSRF token) and start a session."""
    services = services_of(request)
    base = settings_of(request).path
    form = await request.post()
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    next_path = safe_next(str(form.get("next", "")), base)
    address = client_address(request)
    shown = username[:_MAX_NAME]
    token = _login_token(request)

    def again(error: str, status: int) -> web.Response:
        return _login_page(
            request, token=token, next_path=next_path, username=shown, error=error, status=status
        )

    wait = await services.throttle.locked_for(username, address)
    if wait > 0:
        event = web_audit_event(
            request, "login_locked", actor=shown, target=shown, detail={"wait_s": int(wait)}
        )
        await services.writer.run(lambda conn: record_audit_event(conn, event))
        return again(f"账号已锁定，请 {minutes(wait)} 分钟后再试。", 429)
    check = await services.accounts.authenticate(username, password) if username else None
    if check is None:
        await services.throttle.failed(username, address)
        event = web_audit_event(request, "login_failed", actor=shown, target=shown)
        await services.writer.run(lambda conn: record_audit_event(conn, event))
        return again(BAD_LOGIN, 401)

    name = check.account.username
    await services.throttle.succeeded(name)
    session_token, _session = await services.sessions.start(name, address)
    event = web_audit_event(
        request, "login", actor=name, target=name, detail={"rehashed": check.new_hash is not None}
    )

    def record(conn: Connection) -> None:
        mark_login(conn, name, event.at, check.new_hash)
        record_audit_event(conn, event)

    await services.writer.run(record)
    found = web.HTTPFound(next_path)
    found.set_cookie(SESSION_COOKIE, session_token, **cookie_options(request))
    found.del_cookie(LOGIN_COOKIE, path=base)
    raise found


async def handle_logout(request: web.Request) -> web.StreamResponse:
    """End the session (the middleware checked it and its CSRF token)."""
    services = services_of(request)
    base = settings_of(request).path
    reviewer = current_reviewer(request)
    await services.sessions.end(request[SESSION_TOKEN])
    event = web_audit_event(request, "logout", actor=reviewer.username, target=reviewer.username)
    await services.writer.run(lambda conn: record_audit_event(conn, event))
    found = web.HTTPFound(f"{login_url(base)}?done=logged_out")
    found.del_cookie(SESSION_COOKIE, path=base)
    raise found
