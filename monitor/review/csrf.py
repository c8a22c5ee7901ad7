"""CSRF tokens: every form of the review web posts one back as ``csrf_token``.

A logged-in browser's token lives in its server-side session. The login form, posted before
there is a session, uses a double-submit cookie instead: the form's token must equal the
``HttpOnly`` cookie set when the form was shown, which a cross-site page can neither read nor set.
Tokens are compared in constant time; a POST without a matching token gets 403.
"""

from __future__ import annotations

import hmac
import re
import secrets

from aiohttp import web

__all__ = ["FIELD", "check_form_token", "is_token", "new_token"]

FIELD = "csrf_token"
"""The hidden form field carrying the token."""
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
FORBIDDEN_TEXT = "请求已失效（安全校验未通过），请返回并刷新页面后重试。"


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def is_token(value: str | None) -> bool:
    """Whether ``value`` looks like a token this module made (a cookie may hold anything)."""
    return value is not None and _TOKEN.fullmatch(value) is not None


async def check_form_token(request: web.Request, expected: str) -> None:
    """Raise 403 unless the request's form carries ``expected`` as ``csrf_token``."""
    form = await request.post()
    given = form.get(FIELD)
    if not (
        isinstance(given, str)
        and is_token(expected)
        and hmac.compare_digest(given.encode(), expected.encode())
    ):
        raise web.HTTPForbidden(text=FORBIDDEN_TEXT)
