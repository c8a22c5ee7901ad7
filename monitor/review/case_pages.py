"""The review web's case pages: the queue, a conversation with its cases, actions and notes.

Every handler runs behind the sub-app's auth middleware (``request[REVIEWER]`` is set, and a POST
has passed the CSRF check). Reads run in a thread on the engine; writes go through the
group-commit writer; every conversation view and every action is audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import Engine

from monitor.alerts import store
from monitor.review.auth import client_address, current_reviewer, services_of
from monitor.review.case_actions import ActionRequest, add_note, record_view, run_action
from monitor.review.case_export import export_conversation
from monitor.review.case_view import active_reviewers, load_cases
from monitor.review.flash import done_flashes
from monitor.review.params import int_param
from monitor.review.pseudonyms import pseudonymiser_for
from monitor.review.queue import STATE_LABELS, QueueFilter, load_queue
from monitor.review.render import render_page
from monitor.review.services import read_in_thread
from monitor.review.thread import MAX_SHOWN, load_thread
from monitor.review.transitions import ActionRefused, CaseAction

__all__ = ["add_case_page_routes", "age", "conversation_url"]

T = TypeVar("T")

_CONFLICTS = frozenset({"claimed_by_other", "closed", "already_yours", "not_closed"})


def conversation_url(base: str, conversation_id: str) -> str:
    """The conversation page's path (what alert cards link to, under the public address)."""
    return f"{base}/conversations/{quote(conversation_id, safe='')}"


def add_case_page_routes(app: web.Application) -> None:
    """Register the queue, conversation, action and note routes on the review sub-app."""
    app.router.add_get("/", queue_page, name="queue")
    app.router.add_get("/conversations/{conversation_id:.+}", conversation_page)
    app.router.add_post("/cases/{alert_id}/note", note_action)
    app.router.add_post("/cases/{alert_id}/{action}", case_action)


async def queue_page(request: web.Request) -> web.Response:
    """``GET /review/``: open cases, most severe and oldest first, with filters and paging."""
    services = services_of(request)
    wanted = QueueFilter.from_query(request.query)
    page, reviewers = await read_in_thread(
        services.engine,
        lambda conn: (
            load_queue(conn, wanted, page_size=services.settings.page_size),
            active_reviewers(conn),
        ),
    )
    return render_page(
        request,
        "queue.html",
        {
            "page": page,
            "wanted": wanted,
            "states": STATE_LABELS,
            "reviewers": reviewers,
            "now": services.clock(),
            "conversation_url": conversation_url,
            "age": age,
            "privacy": await pseudonymiser_for(request),
        },
    )


async def conversation_page(request: web.Request) -> web.StreamResponse:
    """``GET /review/conversations/{id}``: the thread around its hits, and its cases (with
    ``?export=csv|jsonl``: the conversation as a download, ``monitor.review.case_export``)."""
    conversation_id = request.match_info["conversation_id"]
    if "export" in request.query:
        return await export_conversation(request, conversation_id, request.query["export"])
    return await _render_conversation(request, conversation_id)


async def _render_conversation(
    request: web.Request,
    conversation_id: str,
    *,
    error: ActionRefused | None = None,
    error_case: str = "",
    comment: str = "",
    status: int = 200,
) -> web.Response:
    services = services_of(request)
    context = _context_size(request.query.get("context"), services.settings.context_messages)
    at = int_param(request.query.get("at"), 1, 2**62)  # a search result's message: shown in view
    thread, cases, reviewers = await read_in_thread(
        services.engine,
        lambda conn: (
            load_thread(conn, conversation_id, context=context, at=at),
            load_cases(conn, conversation_id),
            active_reviewers(conn),
        ),
    )
    if not thread.total and not cases:
        raise web.HTTPNotFound(text="没有这个会话")
    reviewer = current_reviewer(request)
    now = services.clock()
    await services.writer.run(
        lambda conn: record_view(
            conn, conversation_id, actor=reviewer.username, now=now, address=client_address(request)
        )
    )
    return render_page(
        request,
        "conversation.html",
        {
            "conversation_id": conversation_id,
            "thread": thread,
            "cases": cases,
            "reviewers": reviewers,
            "flashes": done_flashes(request) if error is None else [],
            "error_case": error_case,
            "error_message": error.message if error is not None else "",
            "comment": comment,
            "more_context": min(max(context, 1) * 4, MAX_SHOWN),
            "all_context": MAX_SHOWN,
            "privacy": await pseudonymiser_for(request),
        },
        status=status,
    )


def age(now: datetime, then: datetime) -> str:
    """How long ago, in Chinese: 刚刚, 12 分钟, 3 小时, 2 天."""
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 60:
        return "刚刚"
    if seconds < 3600:
        return f"{seconds // 60} 分钟"
    if seconds < 86400:
        return f"{seconds // 3600} 小时"
    return f"{seconds // 86400} 天"


def _context_size(raw: str | None, default: int) -> int:
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        value = default
    return max(0, min(value, MAX_SHOWN))


async def case_action(request: web.Request) -> web.StreamResponse:
    """``POST /review/cases/{alert_id}/{action}``: claim, assign, release, resolve, ..."""
    try:
        action = CaseAction(request.match_info["action"])
    except ValueError:
        raise web.HTTPNotFound(text="没有这个操作") from None
    services = services_of(request)
    reviewer = current_reviewer(request)
    form = await request.post()
    comment = str(form.get("comment", ""))
    req = ActionRequest(
        alert_id=request.match_info["alert_id"],
        action=action,
        actor=reviewer.username,
        is_admin=reviewer.is_admin,
        now=services.clock(),
        comment=comment,
        assignee=str(form.get("assignee", "")),
        address=client_address(request),
    )
    settings = services.settings
    outcome = await services.writer.run(
        lambda conn: run_action(
            conn, req, card_style=services.card_style, escalate_to=settings.escalate_to
        )
    )
    if isinstance(outcome, ActionRefused):
        return await _refused(request, req.alert_id, outcome, comment)
    services.wake_outbox()
    raise _back(request, outcome.alert.conversation_id, req.alert_id, action.value)


async def note_action(request: web.Request) -> web.StreamResponse:
    """``POST /review/cases/{alert_id}/note``: a reviewer's note on the case."""
    services = services_of(request)
    reviewer = current_reviewer(request)
    alert_id = request.match_info["alert_id"]
    form = await request.post()
    body = str(form.get("comment", ""))
    now = services.clock()
    refused = await services.writer.run(
        lambda conn: add_note(
            conn,
            alert_id,
            author=reviewer.username,
            body=body,
            now=now,
            address=client_address(request),
        )
    )
    if refused is not None:
        return await _refused(request, alert_id, refused, body)
    conversation_id = await _conversation_of(services.engine, alert_id)
    raise _back(request, conversation_id or "", alert_id, "note")


async def _conversation_of(engine: Engine, alert_id: str) -> str | None:
    row: Any = await read_in_thread(engine, lambda conn: store.load_alert(conn, alert_id))
    return None if row is None else str(row.conversation_id)


async def _refused(
    request: web.Request, alert_id: str, refused: ActionRefused, comment: str
) -> web.Response:
    conversation_id = await _conversation_of(services_of(request).engine, alert_id)
    if conversation_id is None:
        raise web.HTTPNotFound(text="案件不存在")
    return await _render_conversation(
        request,
        conversation_id,
        error=refused,
        error_case=alert_id,
        comment=comment,
        status=409 if refused.code in _CONFLICTS else 400,
    )


def _back(request: web.Request, conversation_id: str, alert_id: str, done: str) -> web.HTTPSeeOther:
    """The redirect back to the case on its conversation page, saying what was done."""
    base = services_of(request).settings.path
    return web.HTTPSeeOther(
        f"{conversation_url(base, conversation_id)}?done={done}#case-{alert_id}"
    )
