"""One-line notices at the top of a page ("账号已添加"), after a redirect or from a handler.

A redirect after a successful POST names what was done in ``?done=<code>``; the page shows the
fixed text for that code (:data:`DONE_TEXTS`), never text from the query, so a crafted link
cannot put words on our pages. A handler re-rendering a page with an error puts :class:`Flash`
values in the template context as ``flashes`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

__all__ = ["DONE_TEXTS", "Flash", "done_flashes"]


@dataclass(frozen=True, slots=True)
class Flash:
    """A notice: ``kind`` is its CSS class (``ok`` or ``error``), ``text`` what it says."""

    kind: str
    text: str


DONE_TEXTS: dict[str, Flash] = {
    "logged_out": Flash("ok", "已退出登录。"),
    "user_added": Flash("ok", "账号已添加。"),
    "user_disabled": Flash("ok", "账号已停用，其登录会话已全部失效。"),
    "claim": Flash("ok", "已认领该案件"),
    "assign": Flash("ok", "已改派"),
    "release": Flash("ok", "已释放该案件"),
    "resolve": Flash("ok", "已标记为已处理"),
    "false_positive": Flash("ok", "已标记为误报"),
    "escalate": Flash("ok", "已升级，升级卡片已发出"),
    "reopen": Flash("ok", "已重新打开"),
    "note": Flash("ok", "备注已保存"),
    "reveal": Flash("ok", "已显示该客户的真实身份（已记入审计日志）"),
}
"""``?done=`` codes and what they show; add the codes your pages redirect with."""


def done_flashes(request: web.Request) -> list[Flash]:
    """The notice named by the request's ``?done=`` (none for an unknown code)."""
    flash = DONE_TEXTS.get(request.query.get("done", ""))
    return [flash] if flash is not None else []
