"""Pseudonymised review's pages: revealing one customer (with a reason), the admins' list of
reveals, and case links that do not name the customer.

- ``POST <path>/reveal`` (fields ``ref``: the sealed customer id a page's form carries,
  ``reason``: required, ``back``: the sealed page to return to). Writes one audit row (action
  ``reveal``, target the customer id, detail the reason and the pseudonym); from then on, for
  ``[review] reveal_minutes``, that reviewer sees that customer's real id and name on every
  page (``monitor.review.pseudonyms.pseudonymiser_for`` reads the audit trail).
- ``GET <path>/admin/reveals``: admins only; every reveal, newest first: when, who, which
  customer (pseudonym and real id), why, from where; filtered by reviewer.
- ``GET <path>/cases/<alert id>``: the case's conversation page (a redirect). The queue links
  here when pseudonymising, so its HTML never carries a conversation id naming a customer.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import Connection, and_, func, select

from monitor.alerts import store
from monitor.archive.audit import AUDIT, AuditEvent, record_audit_event
from monitor.review.auth import (
    client_address,
    current_reviewer,
    require_admin,
    safe_next,
    services_of,
)
from monitor.review.case_pages import conversation_url
from monitor.review.keys import REVIEW_SETTINGS
from monitor.review.params import int_param, link_query, text_param
from monitor.review.pseudonyms import (
    KEY_CACHE,
    REVEAL_ACTION,
    KeyCache,
    pseudonym,
    pseudonymiser_for,
)
from monitor.review.render import render_page
from monitor.review.transitions import COMMENT_MAX

__all__ = ["RevealRow", "add_privacy_routes", "load_reveals"]

_PAGE = 100


def add_privacy_routes(app: web.Application) -> None:
    """The pseudonym key of this worker, and the reveal, reveals-list and case-link routes."""
    app[KEY_CACHE] = KeyCache(app[REVIEW_SETTINGS].pseudonym_key)
    app.router.add_post("/reveal", reveal_action)
    app.router.add_get("/admin/reveals", reveals_page)
    app.router.add_get("/cases/{alert_id}", case_link)


async def reveal_action(request: web.Request) -> web.StreamResponse:
    """``POST /review/reveal``: show one customer to this reviewer, for a stated reason."""
    services = services_of(request)
    settings = services.settings
    if not settings.pseudonymise:
        raise web.HTTPNotFound(text="未启用客户身份假名化")
    reviewer = current_reviewer(request)
    privacy = await pseudonymiser_for(request)
    form = await request.post()
    customer = privacy.unseal(str(form.get("ref", "")))
    if not customer:
        raise web.HTTPBadRequest(text="无法识别要查看的客户，请返回并刷新页面后重试。")
    reason = str(form.get("reason", "")).strip()
    if not reason:
        raise web.HTTPBadRequest(text="查看客户真实身份必须填写原因，请返回填写。")
    if len(reason) > COMMENT_MAX:
        raise web.HTTPBadRequest(text=f"原因最多 {COMMENT_MAX} 字。")
    event = AuditEvent(
        at=services.clock(),
        actor=reviewer.username,
        source="web",
        action=REVEAL_ACTION,
        target=customer,
        detail={"reason": reason, "pseudonym": pseudonym(privacy.key, customer)},
        address=client_address(request),
    )
    await services.writer.run(lambda conn: record_audit_event(conn, event))
    back = privacy.unseal(str(form.get("back", ""))) or ""
    target = safe_next(back, settings.path)
    path, sep, fragment = target.partition("#")
    joiner = "&" if "?" in path else "?"
    raise web.HTTPSeeOther(f"{path}{joiner}done=reveal{sep}{fragment}")


async def case_link(request: web.Request) -> web.StreamResponse:
    """``GET /review/cases/{alert_id}``: to the case on its conversation page."""
    services = services_of(request)
    alert_id = request.match_info["alert_id"]

    def read() -> Any:
        with services.engine.connect() as conn:
            return store.load_alert(conn, alert_id)

    row = await asyncio.to_thread(read)
    if row is None:
        raise web.HTTPNotFound(text="案件不存在")
    raise web.HTTPSeeOther(
        f"{conversation_url(services.settings.path, row.conversation_id)}#case-{alert_id}"
    )


@dataclass(frozen=True, slots=True)
class RevealRow:
    """One reveal as the admins' page lists it."""

    id: int
    at: datetime
    actor: str
    customer_id: str
    pseudonym: str
    reason: str
    address: str


@dataclass(frozen=True, slots=True)
class RevealPage:
    rows: list[RevealRow]
    total: int
    page: int
    pages: int


def load_reveals(
    conn: Connection, *, actor: str = "", page: int = 1, page_size: int = _PAGE
) -> RevealPage:
    """Reveals (by ``actor`` when given), newest first."""
    where = AUDIT.c.action == REVEAL_ACTION
    if actor:
        where = and_(where, AUDIT.c.actor == actor)
    total = int(conn.execute(select(func.count()).select_from(AUDIT).where(where)).scalar_one())
    pages = max(1, math.ceil(total / page_size))
    page = min(max(page, 1), pages)
    rows = conn.execute(
        select(AUDIT)
        .where(where)
        .order_by(AUDIT.c.id.desc())
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    out = []
    for r in rows:
        try:
            detail = json.loads(r.detail or "{}")
        except ValueError:
            detail = {}
        out.append(
            RevealRow(
                r.id,
                r.at,
                r.actor,
                r.target,
                str(detail.get("pseudonym", "")),
                str(detail.get("reason", "")),
                r.address,
            )
        )
    return RevealPage(out, total, page, pages)


async def reveals_page(request: web.Request) -> web.Response:
    """``GET /review/admin/reveals``: admins only."""
    require_admin(request)
    services = services_of(request)
    actor = text_param(request.query.get("actor"), 64)
    page_no = int_param(request.query.get("page"), 1, 1_000_000) or 1

    def read() -> RevealPage:
        with services.engine.connect() as conn:
            return load_reveals(conn, actor=actor, page=page_no)

    page = await asyncio.to_thread(read)

    def query(**changes: Any) -> dict[str, str]:
        values = {"actor": actor, "page": "" if page.page == 1 else str(page.page)}
        return link_query(values, changes)

    return render_page(
        request,
        "reveals.html",
        {"page": page, "actor": actor, "query": query, "settings": services.settings},
    )
