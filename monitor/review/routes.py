"""The review pages besides login and accounts: the queue, conversation pages with their case
actions and notes (``monitor.review.case_pages``), the audit log (``monitor.review.audit_log``),
the archive's media files (``monitor.review.media_pages``), and the allow-list pages
(``monitor.review.allowlist_pages``).
the archive's media files (``monitor.review.media_pages``), a conversation's export
(``monitor.review.case_export``) and legal holds (``monitor.review.holds_pages``).
"""

from __future__ import annotations

from aiohttp import web

from monitor.review.allowlist_pages import add_allowlist_routes
from monitor.review.audit_log import add_audit_log_routes
from monitor.review.case_export import add_case_export_routes
from monitor.review.case_pages import add_case_page_routes
from monitor.review.dashboard_pages import add_dashboard_routes
from monitor.review.holds_pages import add_hold_routes
from monitor.review.media_pages import add_media_routes
from monitor.review.reveal_pages import add_privacy_routes

__all__ = ["add_case_routes"]


def add_case_routes(app: web.Application) -> None:
    """Register the queue, conversation, case action, note, audit log and media routes."""
    add_case_export_routes(app)  # before the conversation page, whose pattern takes any path
    add_case_page_routes(app)
    add_hold_routes(app)
    add_audit_log_routes(app)
    add_media_routes(app)
    add_dashboard_routes(app)
    add_allowlist_routes(app)
    add_privacy_routes(app)
