"""The review sub-app: mounted by the bot's app at ``[review].path`` (``/review``).

Middlewares, outermost first: security headers (``monitor.review.headers``), then the login gate
with its CSRF check (``monitor.review.auth``). Pages are jinja2 templates (aiohttp-jinja2's
environment, autoescaped, undefined names are errors) rendered with
``monitor.review.render.render_page``, which gives every template ``base``, ``reviewer``,
``csrf_token`` and ``flashes`` (aiohttp-jinja2's own context processors keep their state under
a plain string request key, which aiohttp >= 3.14 warns about).

Routes: ``/static/`` (the style sheet, open), ``/login`` and ``/logout`` (``monitor.review.login``),
``/admin/users`` (``monitor.review.admin_users``), and the case pages, registered by
``monitor.review.routes.add_case_routes``.

The services (database, sessions, ...) are set on the parent app under ``REVIEW_SERVICES``
(``bot.web.resources`` builds them); a test can mount this app on a bare parent of its own.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from monitor.review.admin_users import add_admin_user_routes
from monitor.review.auth import LOGIN_ROUTE, auth_middleware
from monitor.review.headers import STATIC_ROUTE, security_headers
from monitor.review.keys import REVIEW_SETTINGS
from monitor.review.login import handle_login_get, handle_login_post, handle_logout
from monitor.review.routes import add_case_routes
from monitor.review.settings import ReviewSettings

__all__ = ["create_review_app"]

_HERE = Path(__file__).resolve().parent


def create_review_app(settings: ReviewSettings) -> web.Application:
    """The review web, to mount with ``app.add_subapp(settings.path, create_review_app(settings))``."""
    app = web.Application(middlewares=[security_headers, auth_middleware])
    app[REVIEW_SETTINGS] = settings

    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        default_helpers=False,
    )
    app.router.add_static("/static/", _HERE / "static", name=STATIC_ROUTE)
    app.router.add_get("/login", handle_login_get, name=LOGIN_ROUTE)
    app.router.add_post("/login", handle_login_post, name=LOGIN_ROUTE)
    app.router.add_post("/logout", handle_logout, name="review_logout")
    add_admin_user_routes(app)
    # ---- the case pages (queue, conversations, actions, audit log) plug in here ----
    add_case_routes(app)
    return app
