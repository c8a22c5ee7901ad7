"""The admin page of the audit trail: who did what, when, from where; newest first, filtered."""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import ColumnElement, Connection, and_, func, select, true

from monitor.archive.audit import AUDIT
from monitor.review.auth import require_admin, services_of
from monitor.review.case_view import ACTION_LABELS
from monitor.review.params import date_param, day_range, int_param, link_query, text_param
from monitor.review.render import render_page

__all__ = ["AuditFilter", "AuditPage", "AuditRow", "add_audit_log_routes", "load_audit"]

_PAGE = 100
_MORE_LABELS = {
    "login": "登录",
    "login_failed": "登录失败",
    "login_locked": "登录被锁定",
    "logout": "退出登录",
    "user_add": "新建账号",
    "user_disable": "停用账号",
    "anchor": "发布链头",
}


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor: str = ""
    action: str = ""
    target: str = ""
    since: date | None = None
    until: date | None = None
    page: int = 1

    @classmethod
    def from_query(cls, query: Any) -> AuditFilter:
        """Parse the page's query string; bad values are ignored."""
        return cls(
            actor=text_param(query.get("actor")),
            action=text_param(query.get("action")),
            target=text_param(query.get("target")),
            since=date_param(query.get("since")),
            until=date_param(query.get("until")),
            page=int_param(query.get("page"), 1, 1_000_000) or 1,
        )

    def query(self, **changes: Any) -> dict[str, str]:
        values = {
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "page": "" if self.page == 1 else str(self.page),
        }
        return link_query(values, changes)


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    source: str
    action: str
    target: str
    detail: str
    address: str

    @property
    def action_label(self) -> str:
        return ACTION_LABELS.get(self.action) or _MORE_LABELS.get(self.action, self.action)


@dataclass(frozen=True, slots=True)
class AuditPage:
    rows: list[AuditRow]
    total: int
    page: int
    pages: int


def load_audit(conn: Connection, wanted: AuditFilter, *, page_size: int = _PAGE) -> AuditPage:
    """One page of audit rows matching ``wanted``, newest first."""
    where = _conditions(wanted)
    total = int(conn.execute(select(func.count()).select_from(AUDIT).where(where)).scalar_one())
    pages = max(1, math.ceil(total / page_size))
    page = min(wanted.page, pages)
    rows = conn.execute(
        select(AUDIT)
        .where(where)
        .order_by(AUDIT.c.id.desc())
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    return AuditPage([_row(r) for r in rows], total, page, pages)


def _conditions(wanted: AuditFilter) -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = []
    if wanted.actor:
        parts.append(AUDIT.c.actor == wanted.actor)
    if wanted.action:
        parts.append(AUDIT.c.action == wanted.action)
    if wanted.target:
        parts.append(AUDIT.c.target == wanted.target)
    parts.extend(day_range(AUDIT.c.at, wanted.since, wanted.until))
    return and_(true(), *parts)


def _row(r: Any) -> AuditRow:
    try:
        detail = json.loads(r.detail or "{}")
        shown = "；".join(f"{key}: {value}" for key, value in sorted(detail.items()))
    except ValueError:
        shown = r.detail
    return AuditRow(r.id, r.at, r.actor, r.source, r.action, r.target, shown, r.address)


async def audit_page(request: web.Request) -> web.Response:
    """``GET /review/admin/audit``: admins only."""
    require_admin(request)
    services = services_of(request)
    wanted = AuditFilter.from_query(request.query)

    def read() -> AuditPage:
        with services.engine.connect() as conn:
            return load_audit(conn, wanted)

    page = await asyncio.to_thread(read)
    return render_page(request, "audit.html", {"page": page, "wanted": wanted})


def add_audit_log_routes(app: web.Application) -> None:
    """Register ``GET /admin/audit`` on the review sub-app."""
    app.router.add_get("/admin/audit", audit_page)
