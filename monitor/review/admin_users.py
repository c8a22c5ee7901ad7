"""``<path>/admin/users``: the admin page listing accounts, with forms to add and disable one.

Admins only (:func:`monitor.review.auth.require_admin`); both forms carry the CSRF token (checked
by the auth middleware) and every change is an audit row (``user_add`` / ``user_disable``,
source ``web``), written by :class:`monitor.review.accounts.Accounts` with the change itself.
"""

from __future__ import annotations

from aiohttp import web

from monitor.review.accounts import MIN_PASSWORD_LENGTH, AccountError
from monitor.review.auth import client_address, require_admin, services_of, settings_of
from monitor.review.flash import Flash
from monitor.review.models import Role
from monitor.review.render import render_page

__all__ = ["add_admin_user_routes"]

_ERRORS = {
    "name": "用户名只能包含字母、数字和 . _ @ -，最长 64 个字符。",
    "role": "角色无效。",
    "short": f"密码至少需要 {MIN_PASSWORD_LENGTH} 个字符。",
    "long": "密码过长。",
    "mismatch": "两次输入的密码不一致。",
    "exists": "该用户名已存在。",
    "unknown": "没有这个账号。",
    "self": "不能停用自己的账号。",
}


async def _page(
    request: web.Request, *, error: str | None = None, status: int = 200
) -> web.Response:
    accounts = await services_of(request).accounts.list()
    context: dict[str, object] = {"accounts": accounts, "roles": Role.ALL}
    if error:
        context["flashes"] = [Flash("error", _ERRORS[error])]
    return render_page(request, "users.html", context, status=status)


async def handle_users(request: web.Request) -> web.Response:
    require_admin(request)
    return await _page(request)


async def handle_add_user(request: web.Request) -> web.Response:
    admin = require_admin(request)
    form = await request.post()
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    if password != str(form.get("password_confirm", "")):
        return await _page(request, error="mismatch", status=400)
    try:
        await services_of(request).accounts.add(
            username,
            password,
            str(form.get("role", "")),
            actor=admin.username,
            source="web",
            address=client_address(request),
        )
    except AccountError as exc:
        return await _page(request, error=exc.kind, status=400)
    raise web.HTTPSeeOther(f"{settings_of(request).path}/admin/users?done=user_added")


async def handle_disable_user(request: web.Request) -> web.Response:
    admin = require_admin(request)
    username = request.match_info["username"]
    if username == admin.username:
        return await _page(request, error="self", status=400)
    try:
        await services_of(request).accounts.disable(
            username, actor=admin.username, source="web", address=client_address(request)
        )
    except AccountError as exc:
        return await _page(request, error=exc.kind, status=404)
    raise web.HTTPSeeOther(f"{settings_of(request).path}/admin/users?done=user_disabled")


def add_admin_user_routes(app: web.Application) -> None:
    """Register the account pages on the review sub-app."""
    app.router.add_get("/admin/users", handle_users, name="review_admin_users")
    app.router.add_post("/admin/users", handle_add_user)
    app.router.add_post("/admin/users/{username}/disable", handle_disable_user)
