"""The review web's archive search: ``GET /review/search`` and its export.

The page takes the query (``q``) and filters from the query string, leniently (a bad value is as
if absent, so no input is ever an error page), and shows one page of matches newest first, each
as a snippet with the match in ``<mark>`` (:func:`monitor.archive.search.snippet` escapes the chat
text), linked to its conversation AT that message (``?at=<id>#m<id>``). The export
(``GET /review/search/export?format=csv|jsonl&<the same filters>``) streams every match as a
download, read 500 at a time, in the archive export's columns (:mod:`monitor.archive.export`:
CSV with a BOM for Excel, formula cells neutralised; or JSON lines).

Every search with a query or a filter is audited (``search``: the query and filters, and the
count found); every export too (``search_export``: the filters, the format and the rows sent),
once its last row is out or the download is broken off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import Connection, select

from monitor.alerts.policy import AlertStatus
from monitor.archive.audit import record_audit_event
from monitor.archive.export import ExportRow, csv_header, csv_lines, jsonl_lines
from monitor.archive.models import MessageRecord
from monitor.archive.search import (
    OPEN_STATE,
    QUERY_MAX,
    SearchFilter,
    SearchPage,
    export_chunk,
    search_messages,
    snippet,
)
from monitor.review.auth import current_reviewer, services_of, web_audit_event
from monitor.review.case_pages import conversation_url
from monitor.review.headers import CONTENT_SECURITY_POLICY
from monitor.review.params import date_param, int_param, text_param
from monitor.review.pseudonyms import pseudonymiser_for
from monitor.review.queue import STATE_LABELS
from monitor.review.render import render_page
from monitor.review.services import read_in_thread
from monitor.review.thread import SPEAKERS
from rules.models import Severity

__all__ = ["EXPORT_CHUNK", "PAGE_SIZE", "add_search_routes", "search_filter"]

T = TypeVar("T")

PAGE_SIZE = 50
"""Results per page."""

EXPORT_CHUNK = 500
"""Matches read (and sent) per step of an export."""

MESSAGES = MessageRecord.__table__

EXPORT_TZ = ZoneInfo("Asia/Shanghai")
"""Times in an export, as ``archive export`` and a conversation's export write them."""

_FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "jsonl": ("application/x-ndjson; charset=utf-8", "jsonl"),
}


def add_search_routes(app: web.Application) -> None:
    """Register the search page and its export on the review sub-app."""
    app.router.add_get("/search", search_page, name="search")
    app.router.add_get("/search/export", search_export, name="search_export")
    app.router.add_get("/messages/{message_id:\\d+}", message_link)


async def message_link(request: web.Request) -> web.Response:
    """``GET /review/messages/{id}``: to the message in its conversation page (a search result
    links here, so a pseudonymised result page names no conversation, and so no customer)."""
    services = services_of(request)
    message_id = int(request.match_info["message_id"])

    def read(conn: Connection) -> str | None:
        return conn.execute(
            select(MESSAGES.c.conversation_id).where(MESSAGES.c.id == message_id)
        ).scalar_one_or_none()

    conversation_id = await read_in_thread(services.engine, read)
    if not conversation_id:
        raise web.HTTPNotFound(text="这条消息不存在或不属于任何会话")
    at = f"?at={message_id}#m{message_id}"
    raise web.HTTPSeeOther(conversation_url(services.settings.path, conversation_id) + at)


def search_filter(query: Mapping[str, Any]) -> SearchFilter:
    """The search a query string asks for; bad values are ignored, never an error."""
    state = str(query.get("state", ""))
    if state not in (OPEN_STATE, *(s.value for s in AlertStatus)):
        state = ""
    raw = query.get("q")
    return SearchFilter(
        # Only blanks at the ends go: a query may hold inner spaces.
        text=str(raw if raw is not None else "").strip()[:QUERY_MAX],
        staff=text_param(query.get("staff"), 128),
        customer=text_param(query.get("customer"), 128),
        conversation=text_param(query.get("conversation"), 300),
        since=date_param(query.get("since")),
        until=date_param(query.get("until")),
        word=text_param(query.get("word"), 64),
        severity=int_param(query.get("severity"), 1, 4),
        state=state,
        page=int_param(query.get("page"), 1, 100_000) or 1,
    )


async def search_page(request: web.Request) -> web.Response:
    """``GET /review/search``: the form, and one page of matches when something is asked."""
    services = services_of(request)
    wanted = search_filter(request.query)
    page: SearchPage | None = None
    if not wanted.empty:
        page = await read_in_thread(
            services.engine, lambda conn: search_messages(conn, wanted, page_size=PAGE_SIZE)
        )
        event = web_audit_event(
            request,
            "search",
            actor=current_reviewer(request).username,
            detail={**wanted.audit_detail(), "page": str(page.page), "found": page.total_label},
        )
        await services.writer.run(lambda conn: record_audit_event(conn, event))
    base = services.settings.path
    return render_page(
        request,
        "search.html",
        {
            "wanted": wanted,
            "page": page,
            "states": {
                OPEN_STATE: "未结案",
                **{s.value: label for s, label in STATE_LABELS.items()},
            },
            "severities": [(s.value, s.label) for s in Severity],
            "speakers": SPEAKERS,
            "snippet": snippet,
            "message_url": lambda mid: f"{base}/messages/{mid}",
            "privacy": await pseudonymiser_for(request),
            "sent_at": _sent_at,
        },
    )


def _sent_at(create_time: int) -> str:
    try:
        return datetime.fromtimestamp(create_time, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return str(create_time)


def export_headers(fmt: str, now: datetime) -> dict[str, str]:
    """The download's headers: type, a UTF-8 file name (with an ASCII one for old clients), and
    the review web's security headers (set here: a streamed response's go out at ``prepare``)."""
    content_type, ext = _FORMATS[fmt]
    stamp = now.astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    name = f"聊天记录搜索-{stamp}.{ext}"
    return {
        "Content-Type": content_type,
        "Content-Disposition": (
            f"attachment; filename=\"search-{stamp}.{ext}\"; filename*=UTF-8''{quote(name)}"
        ),
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }


def _encode(rows: list[ExportRow], fmt: str, *, first: bool) -> bytes:
    """One chunk of the file: the CSV header (with its BOM) only in the first."""
    if fmt == "jsonl":
        return jsonl_lines(rows, tz=EXPORT_TZ)
    body = csv_lines(rows, tz=EXPORT_TZ)
    return csv_header() + body if first else body


def _next_chunk(
    wanted: SearchFilter, before: int | None
) -> Callable[[Connection], list[ExportRow]]:
    return lambda conn: export_chunk(conn, wanted, before_id=before, size=EXPORT_CHUNK)


async def search_export(request: web.Request) -> web.StreamResponse:
    """``GET /review/search/export``: every match of the search, streamed as CSV or JSON lines."""
    services = services_of(request)
    wanted = search_filter(request.query)
    base = services.settings.path
    if wanted.empty:  # the whole archive is the CLI's export (run_bot.py archive export)
        raise web.HTTPSeeOther(f"{base}/search")
    fmt = str(request.query.get("format", "csv"))
    fmt = fmt if fmt in _FORMATS else "csv"
    reviewer = current_reviewer(request)
    privacy = await pseudonymiser_for(request)
    response = web.StreamResponse(headers=export_headers(fmt, services.clock()))
    sent = 0
    audited = False

    async def audit(complete: bool) -> None:
        nonlocal audited
        audited = True
        detail = {**wanted.audit_detail(), "format": fmt, "rows": sent, "complete": complete}
        event = web_audit_event(request, "search_export", actor=reviewer.username, detail=detail)
        await asyncio.shield(services.writer.run(lambda conn: record_audit_event(conn, event)))

    try:
        await response.prepare(request)
        before: int | None = None
        while True:
            chunk = await read_in_thread(services.engine, _next_chunk(wanted, before))
            if chunk or sent == 0:
                shown = [privacy.export_row(row) for row in chunk]
                await response.write(_encode(shown, fmt, first=sent == 0))
            sent += len(chunk)
            if len(chunk) < EXPORT_CHUNK:
                break
            before = chunk[-1].id
        await audit(True)  # before the end of the body: the download is complete once audited
        await response.write_eof()
    finally:
        if not audited:  # broken off (client gone, database failed): audit what was sent
            await audit(False)
    return response
