"""The review pages besides login and accounts: queue, conversation pages, actions, audit log.

A placeholder until ``monitor.review.cases_web`` lands: ``GET <path>/`` answers an empty queue
page, so that a login has somewhere to land.
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from monitor.review.render import page_context

__all__ = ["add_case_routes"]

_PLACEHOLDER = """{% extends "base.html" %}
{% block title %}待审队列{% endblock %}
{% block content %}<h1>待审队列</h1><p class="empty">暂无待审会话。</p>{% endblock %}"""


async def _queue(request: web.Request) -> web.Response:
    template = aiohttp_jinja2.get_env(request.app).from_string(_PLACEHOLDER)
    return web.Response(text=template.render(page_context(request)), content_type="text/html")


def add_case_routes(app: web.Application) -> None:
    """Queue, conversation pages, actions, audit log (monitor.review.cases_web)."""
    app.router.add_get("/", _queue, name="review_queue")
