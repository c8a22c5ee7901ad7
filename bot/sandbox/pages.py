"""The send sandbox's pages: ``GET /sandbox/`` (cards as a manager would see them) and
``GET /sandbox/calls.json?after=<id>``.

Both read only the database (:class:`~monitor.SandboxLog`), so any worker shows every worker's
calls. Everything shown from a call is chat or config text and goes through jinja2 with autoescape
on; links are kept only for http(s) URLs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import jinja2
from aiohttp import web
from yarl import URL

from monitor.alerts.cards import AlertWording
from monitor.alerts.models import AlertRecord
from monitor.alerts.policy import AlertKind
from monitor.archive import SandboxCall, SandboxLog
from monitor.archive.queries import recent_alerts
from rules.models import Severity

__all__ = [
    "SANDBOX_TITLE",
    "AlertView",
    "CallView",
    "CardView",
    "add_sandbox_routes",
    "alert_view",
    "call_view",
]

SANDBOX_TITLE = "发送沙箱（未配置 WeCom Secret，消息未真正发出）"
_PAGE_CALLS = 50
_PAGE_ALERTS = 20
_STATES = {
    "open": "待处理",
    "claimed": "已认领",
    "escalated": "已升级",
    "resolved": "已处理",
    "false_positive": "误报",
}
_JSON_LIMIT_MAX = 500
_CARD_TYPES = {
    "text_notice": "文本通知型",
    "news_notice": "图文展示型",
    "button_interaction": "按钮交互型",
    "vote_interaction": "投票选择型",
    "multiple_interaction": "多项选择型",
}


@dataclass(frozen=True, slots=True)
class Link:
    """A text and, when it is an http(s) URL, where it points (else None: shown as text)."""

    text: str
    url: str | None


@dataclass(frozen=True, slots=True)
class CardView:
    """The parts of a ``template_card`` the page draws (doc 90236), as plain strings."""

    card_type: str
    source: str = ""
    title: str = ""
    desc: str = ""
    emphasis_title: str = ""
    emphasis_desc: str = ""
    quote: str = ""
    sub_title: str = ""
    rows: list[tuple[str, Link]] = field(default_factory=list)
    jumps: list[Link] = field(default_factory=list)
    buttons: list[tuple[str, int]] = field(default_factory=list)
    """(text, style): style 1 blue, 2 grey, 3 red, 4 blue outline, as WeCom draws them."""
    action: Link | None = None


@dataclass(frozen=True, slots=True)
class CallView:
    """One recorded call, ready for the template."""

    id: int
    at: str
    path: str
    recipients: str
    card: CardView | None = None
    content_label: str = ""
    content: str | None = None
    update_note: str | None = None
    pretty: str = ""


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _as_is(handler: Handler) -> Handler:
    return handler


def add_sandbox_routes(
    app: web.Application,
    log: SandboxLog | web.AppKey[SandboxLog],
    *,
    prefix: str = "/sandbox",
    guard: Callable[[Handler], Handler] = _as_is,
) -> None:
    """Add ``GET {prefix}/`` (HTML) and ``GET {prefix}/calls.json?after=&limit=`` to ``app``.

    ``log`` may be the log itself or the app key under which a ``cleanup_ctx`` stores it (the log
    needs the database writer, which exists only once the app starts). ``guard`` wraps every
    route's handler (the app passes who may see the pages: ``bot.web.access``).
    """
    prefix = prefix.rstrip("/")
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bot.sandbox", "templates"),
        autoescape=True,  # every string on the page comes from chat or config: always escape
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = env.get_template("sandbox.html")

    def resolve(request: web.Request) -> SandboxLog:
        return log if isinstance(log, SandboxLog) else request.app[log]

    async def page(request: web.Request) -> web.Response:
        sandbox = resolve(request)
        calls = await sandbox.recent(_PAGE_CALLS)
        alerts = await asyncio.to_thread(recent_alerts, sandbox.engine, _PAGE_ALERTS)
        html = template.render(
            title=SANDBOX_TITLE,
            alerts=[alert_view(a) for a in alerts],
            calls=[call_view(c) for c in calls],
            latest=calls[0].id if calls else 0,
            json_url=f"{prefix}/calls.json",
        )
        return web.Response(text=html, content_type="text/html", charset="utf-8")

    async def calls_json(request: web.Request) -> web.Response:
        try:
            after = int(request.query.get("after", "0"))
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            raise web.HTTPBadRequest(text="after and limit must be integers") from None
        if not 1 <= limit <= _JSON_LIMIT_MAX:
            raise web.HTTPBadRequest(text=f"limit must be 1..{_JSON_LIMIT_MAX}")
        calls = await resolve(request).since(after, limit)
        return web.json_response(
            [_as_json(c) for c in calls], dumps=lambda v: json.dumps(v, ensure_ascii=False)
        )

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"{prefix}/")

    app.router.add_get(f"{prefix}/", guard(page))
    app.router.add_get(f"{prefix}/calls.json", guard(calls_json))
    if prefix:
        app.router.add_get(prefix, guard(redirect))


@dataclass(frozen=True, slots=True)
class AlertView:
    """One alert's line on the page: what it is and where it stands."""

    title: str
    conversation: str
    level: str
    count: int
    state: str
    who: str
    last: str


def alert_view(alert: AlertRecord) -> AlertView:
    """An alert row as the page shows it (Chinese labels; escaping is the template's job)."""
    kind, severity = AlertKind(alert.kind), Severity(alert.severity)
    who = [f"{alert.claimed_by} 认领"] if alert.claimed_by else []
    if alert.closed_by:
        who.append(f"{alert.closed_by} {_STATES.get(alert.status, alert.status)}")
    if alert.escalated:
        who.append("已升级")
    return AlertView(
        title=AlertWording().title(kind, severity),
        conversation=alert.conversation_id,
        level=severity.label,
        count=alert.count,
        state=_STATES.get(alert.status, alert.status),
        who="，".join(who) or "—",
        last=f"{alert.last_at:%m-%d %H:%M:%S}",
    )


def _as_json(call: SandboxCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "at": call.at.isoformat(),
        "path": call.path,
        "body": _loads(call.body),
        "answer": _loads(call.answer),
    }


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def call_view(call: SandboxCall) -> CallView:
    """What the page shows for one call: recipients, a rough rendering, the pretty JSON."""
    body = _loads(call.body)
    answer = _loads(call.answer)
    body = body if isinstance(body, dict) else {}
    pretty = json.dumps({"body": body, "answer": answer}, ensure_ascii=False, indent=2)
    view = CallView(
        id=call.id or 0,
        at=f"{call.at.astimezone():%Y-%m-%d %H:%M:%S}",
        path=call.path,
        recipients=_recipients(call.path, body),
        pretty=pretty,
    )
    msgtype = _s(body.get("msgtype"))
    payload = _map(body.get(msgtype)) if msgtype else {}
    if call.path == "message/update_template_card":
        button = _map(body.get("button"))
        if button:
            return replace(view, update_note=f"卡片按钮更新为：{_s(button.get('replace_name'))}")
        return replace(
            view, update_note="卡片整体更新为：", card=_card(_map(body.get("template_card")))
        )
    if msgtype == "template_card":
        return replace(view, card=_card(payload))
    if msgtype in ("text", "markdown") and "content" in payload:
        label = "文本" if msgtype == "text" else "Markdown"
        return replace(view, content_label=label, content=_s(payload.get("content")))
    return view


def _recipients(path: str, body: Mapping[str, Any]) -> str:
    if path == "webhook/send":
        mentioned = _seq(_map(body.get("text")).get("mentioned_list"))
        return "群机器人" + (f"（@{'、@'.join(mentioned)}）" if mentioned else "")
    if path == "message/update_template_card":
        return "、".join(_seq(body.get("userids"))) or "—"
    if path == "appchat/send":
        return f"群聊 {_s(body.get('chatid'))}"
    if path == "kf/send_msg_on_event":
        return "事件对应的客户"
    if path.startswith("kf/"):
        who = _s(body.get("touser") or body.get("external_userid"))
        return f"客户 {who}" if who else "—"
    parts = []
    for key, label in (("touser", ""), ("toparty", "部门 "), ("totag", "标签 ")):
        ids = [i for i in _s(body.get(key)).split("|") if i]
        if ids:
            parts.append(label + "、".join(ids))
    return "；".join(parts) or "—"


def _card(card: Mapping[str, Any]) -> CardView:
    main = _map(card.get("main_title"))
    emphasis = _map(card.get("emphasis_content"))
    quote = _map(card.get("quote_area"))
    rows = []
    for row in _maps(card.get("horizontal_content_list")):
        rows.append((_s(row.get("keyname")), _link(row.get("value"), row.get("url"))))
    action = _map(card.get("card_action"))
    card_type = _s(card.get("card_type"))
    return CardView(
        card_type=_CARD_TYPES.get(card_type, card_type),
        source=_s(_map(card.get("source")).get("desc")),
        title=_s(main.get("title")),
        desc=_s(main.get("desc")),
        emphasis_title=_s(emphasis.get("title")),
        emphasis_desc=_s(emphasis.get("desc")),
        quote="\n".join(s for s in (_s(quote.get("title")), _s(quote.get("quote_text"))) if s),
        sub_title=_s(card.get("sub_title_text")),
        rows=rows,
        jumps=[_link(j.get("title"), j.get("url")) for j in _maps(card.get("jump_list"))],
        buttons=[
            (_s(b.get("text")), _style(b.get("style"))) for b in _maps(card.get("button_list"))
        ],
        action=_link(action.get("url"), action.get("url")) if action.get("url") else None,
    )


def _link(text: object, url: object) -> Link:
    target = url if isinstance(url, str) else ""
    try:
        safe = URL(target).scheme in ("http", "https") and bool(URL(target).host)
    except ValueError:
        safe = False
    return Link(_s(text), target if safe else None)


def _style(value: object) -> int:
    return value if isinstance(value, int) and value in (1, 2, 3, 4) else 1


def _s(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _maps(value: object) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _seq(value: object) -> Sequence[str]:
    return [_s(v) for v in value if _s(v)] if isinstance(value, list) else []
