"""The review pages besides login and accounts: the queue, conversation pages with their case
actions and notes (``monitor.review.case_pages``), the audit log (``monitor.review.audit_log``),
and the archive's media files (``monitor.review.media_pages``).
"""

from __future__ import annotations

from aiohttp import web

from monitor.review.audit_log import add_audit_log_routes
from monitor.review.case_pages import add_case_page_routes
from monitor.review.media_pages import add_media_routes
from monitor.review.search_pages import add_search_routes

__all__ = ["add_case_routes"]


def add_case_routes(app: web.Application) -> None:
    """Register the queue, conversation, case action, note, audit log and media routes."""
    add_case_page_routes(app)
    add_audit_log_routes(app)
    add_media_routes(app)
    add_search_routes(app)
