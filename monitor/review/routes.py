"""The review pages besides login and accounts: the queue, conversation pages with their case
actions and notes (``monitor.review.case_pages``), and the audit log (``monitor.review.audit_log``).
"""

from __future__ import annotations

from aiohttp import web

from monitor.review.audit_log import add_audit_log_routes
from monitor.review.case_pages import add_case_page_routes

__all__ = ["add_case_routes"]


def add_case_routes(app: web.Application) -> None:
    """Register the queue, conversation, case action, note and audit log routes."""
    add_case_page_routes(app)
    add_audit_log_routes(app)
