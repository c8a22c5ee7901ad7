"""Security headers on every response of the review web, error pages and redirects included.

The pages use no scripts at all, so the Content-Security-Policy allows none: only our own style
sheet, our own (or inline ``data:``) images, and forms posting back to us. Pages are never cached
(they show chat text); the vendored static files may be.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import CIMultiDict

__all__ = ["CONTENT_SECURITY_POLICY", "STATIC_ROUTE", "security_headers"]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
STATIC_ROUTE = "review_static"
"""Name of the static files' route (cacheable, and open without a login)."""

_ALWAYS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def _apply(headers: CIMultiDict[str], *, static: bool) -> None:
    headers.update(_ALWAYS)
    headers["Cache-Control"] = "max-age=3600" if static else "no-store"


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost middleware of the review sub-app."""
    static = request.match_info.route.name == STATIC_ROUTE
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _apply(exc.headers, static=False)
        raise
    _apply(response.headers, static=static)
    return response
