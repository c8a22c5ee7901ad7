"""One conversation as a download: ``GET <path>/conversations/{id}?export=csv|jsonl`` (the link the
conversation page shows: it names no conversation, so a pseudonymised page stays free of customer
ids) or ``GET <path>/conversations/{id}/export?format=csv|jsonl``.

Any reviewer may export a conversation they may view. Under pseudonymised review the file is
pseudonymised as the page is (:meth:`monitor.review.pseudonyms.Pseudonymiser.export_row`): the
customer in each conversation id and each customer sender, and the file's name. The rows and formats are those of
``archive export`` (:mod:`monitor.archive.export`: CSV UTF-8 with a BOM for Excel, formula
cells neutralised; JSON lines), times in Beijing time. The body is streamed
(``web.StreamResponse``), read a page of :data:`PAGE_ROWS` messages at a time in a thread, so a
long conversation never sits in memory. The export is audited before the first byte leaves
(``export``: the conversation, the format and the row count), so no export goes unrecorded.
"""

from __future__ import annotations

import functools
import itertools
import re
from datetime import datetime
from typing import TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import Connection

from monitor.archive.audit import record_audit_event
from monitor.archive.export import (
    ExportRow,
    count_messages,
    csv_header,
    csv_lines,
    export_rows,
    jsonl_lines,
)
from monitor.review.auth import current_reviewer, services_of, web_audit_event
from monitor.review.pseudonyms import pseudonymiser_for
from monitor.review.services import read_in_thread

__all__ = ["PAGE_ROWS", "add_case_export_routes", "download_name", "export_conversation"]

PAGE_ROWS = 500
"""Messages read (and written to the client) per page."""

_TZ = ZoneInfo("Asia/Shanghai")
_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')

T = TypeVar("T")


def download_name(conversation_id: str, fmt: str, now: datetime) -> str:
    """``会话-<id>-<YYYYMMDD>.<fmt>`` with characters no file system takes replaced by ``_``."""
    safe = _UNSAFE.sub("_", conversation_id)[:120]
    return f"会话-{safe}-{now.astimezone(_TZ):%Y%m%d}.{fmt}"


def _disposition(name: str, fmt: str) -> str:
    return f"attachment; filename=\"conversation.{fmt}\"; filename*=UTF-8''{quote(name, safe='')}"


def _page(conn: Connection, conversation_id: str, after: int) -> list[ExportRow]:
    rows = export_rows(conn, conversation=conversation_id, after=after, chunk_size=PAGE_ROWS)
    try:
        return list(itertools.islice(rows, PAGE_ROWS))
    finally:
        rows.close()


async def _export_route(request: web.Request) -> web.StreamResponse:
    return await export_conversation(
        request, request.match_info["conversation_id"], request.query.get("format", "csv")
    )


async def export_conversation(
    request: web.Request, conversation_id: str, fmt: str
) -> web.StreamResponse:
    """Stream one conversation's messages as CSV or JSON lines (see the module docstring)."""
    if fmt not in _TYPES:
        raise web.HTTPBadRequest(text="导出格式只能是 csv 或 jsonl")
    privacy = await pseudonymiser_for(request)
    services = services_of(request)
    reviewer = current_reviewer(request)
    total = await read_in_thread(
        services.engine, lambda conn: count_messages(conn, conversation=conversation_id)
    )
    if not total:
        raise web.HTTPNotFound(text="这个会话没有可导出的消息")
    event = web_audit_event(
        request,
        "export",
        actor=reviewer.username,
        target=conversation_id,
        detail={"format": fmt, "rows": total},
    )
    await services.writer.run(lambda conn: record_audit_event(conn, event))
    response = web.StreamResponse(
        headers={
            "Content-Type": f"{_TYPES[fmt]}; charset=utf-8",
            "Content-Disposition": _disposition(
                download_name(privacy.conversation(conversation_id), fmt, services.clock()), fmt
            ),
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    if fmt == "csv":
        await response.write(csv_header())
    after = 0
    while True:
        rows = await read_in_thread(
            services.engine, functools.partial(_page, conversation_id=conversation_id, after=after)
        )
        if not rows:
            break
        after = rows[-1].id
        rows = [privacy.export_row(row) for row in rows]
        data = csv_lines(rows, tz=_TZ) if fmt == "csv" else jsonl_lines(rows, tz=_TZ)
        await response.write(data)
    await response.write_eof()
    return response


def add_case_export_routes(app: web.Application) -> None:
    """Register the export route; before the conversation page's (its pattern takes any path)."""
    app.router.add_get("/conversations/{conversation_id:.+}/export", _export_route)
