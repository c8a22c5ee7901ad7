"""The review pages besides login and accounts: the queue and conversation pages with their case
actions and notes (``case_pages``), a conversation's export (``case_export``), archive search
(``search_pages``), the dashboard (``dashboard_pages``), the allow-list offer, backtest and
proposals (``allowlist_pages``), customer reveals under pseudonymised review (``reveal_pages``),
legal holds (``holds_pages``), the audit log (``audit_log``) and the archive's media files
(``media_pages``).
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
from monitor.review.search_pages import add_search_routes

__all__ = ["add_case_routes"]


def add_case_routes(app: web.Application) -> None:
    """Register every page listed in the module docstring on the review sub-app."""
    add_case_export_routes(app)  # before the conversation page, whose pattern takes any path
    add_case_page_routes(app)
    add_hold_routes(app)
    add_audit_log_routes(app)
    add_media_routes(app)
    add_dashboard_routes(app)
    add_allowlist_routes(app)
    add_privacy_routes(app)
    add_search_routes(app)
