"""Rendering a review page: the template's own values plus what every page needs.

:func:`page_context` is the context every template gets: ``base`` (the mount path, e.g.
``/review``), ``reviewer`` (the logged-in :class:`~monitor.review.keys.Reviewer`, or None on the
login page), ``csrf_token`` (for the hidden ``csrf_token`` field of every form) and ``flashes``
(notices with ``.kind`` and ``.text``: the fixed text of ``?done=``, or a handler's own).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from monitor.review.flash import done_flashes
from monitor.review.keys import CSRF_TOKEN, REVIEW_SETTINGS, REVIEWER

__all__ = ["page_context", "render_page"]


def page_context(request: web.Request) -> dict[str, Any]:
    """The values every review template gets (a handler's context may override them)."""
    return {
        "base": request.config_dict[REVIEW_SETTINGS].path,
        "reviewer": request.get(REVIEWER),
        "csrf_token": request.get(CSRF_TOKEN, ""),
        "flashes": done_flashes(request),
    }


def render_page(
    request: web.Request, template: str, context: Mapping[str, Any], *, status: int = 200
) -> web.Response:
    """``template`` rendered with :func:`page_context` and ``context`` (which wins)."""
    return aiohttp_jinja2.render_template(
        template, request, {**page_context(request), **context}, status=status
    )
